# Table 1, row "SegFormer B2" (MiT-B2 encoder + all-MLP head), mmseg's default 20k schedule.
# Model hyper-parameters as in mmseg's segformer_mit-b2_8xb1-160k_cityscapes-1024x1024.py; the
# ImageNet encoder is attached by the study, nothing is downloaded here.
_base_ = [
    "mmseg::_base_/models/segformer_mit-b0.py",
    "../_base_/datasets/kitti.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]
data_preprocessor = dict(size={{_base_.crop_size}})
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(init_cfg=None, embed_dims=64, num_heads=[1, 2, 5, 8], num_layers=[3, 4, 6, 3]),
    decode_head=dict(in_channels=[64, 128, 320, 512], num_classes=19),
)
default_hooks = dict(checkpoint=dict(save_best="mIoU", rule="greater", max_keep_ckpts=1))
