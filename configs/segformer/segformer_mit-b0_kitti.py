# SegFormer-B0 (MiT-B0 encoder + all-MLP head) on the KITTI layout, mmseg's default 20k schedule.
# The model comes unchanged from mmseg's zoo; an ImageNet encoder is attached by the study
# (`transfer` or `model.backbone.init_cfg`), since nothing is downloaded at run time.
_base_ = [
    "mmseg::_base_/models/segformer_mit-b0.py",
    "../_base_/datasets/kitti.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]
data_preprocessor = dict(size={{_base_.crop_size}})
model = dict(data_preprocessor=data_preprocessor)
default_hooks = dict(checkpoint=dict(save_best="mIoU", rule="greater", max_keep_ckpts=1))
