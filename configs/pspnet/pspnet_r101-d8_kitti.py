# Table 1, row "PSPNet & ResNet101" (ResNetV1c-101, output stride 8), mmseg's default 20k schedule.
# Model as in mmseg's pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py, without the open-mmlab://
# ImageNet weights (the study attaches a local encoder checkpoint).
_base_ = [
    "mmseg::_base_/models/pspnet_r50-d8.py",
    "../_base_/datasets/kitti.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]
data_preprocessor = dict(size={{_base_.crop_size}})
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(depth=101),
    decode_head=dict(num_classes=19),
    auxiliary_head=dict(num_classes=19),
)
default_hooks = dict(checkpoint=dict(save_best="mIoU", rule="greater", max_keep_ckpts=1))
