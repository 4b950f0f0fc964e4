# SegFormer-B0 on ADE20K (150 classes) through mmseg's own packaged dataset config, used as it
# ships: its layout (images/{training,validation}/*.jpg, annotations/{training,validation}/*.png),
# `reduce_zero_label=True` (label 0 is "other"), pipelines, evaluator and class names. Only the
# head's class count is set here. The model comes unchanged from mmseg's zoo; an ImageNet encoder
# is attached by the study, since nothing is downloaded at run time. mmseg's own ADE20K recipe
# trains 160k iterations.
_base_ = [
    "mmseg::_base_/models/segformer_mit-b0.py",
    "mmseg::_base_/datasets/ade20k.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_160k.py",
]
data_preprocessor = dict(size={{_base_.crop_size}})
model = dict(data_preprocessor=data_preprocessor, decode_head=dict(num_classes=150))
default_hooks = dict(checkpoint=dict(save_best="mIoU", rule="greater", max_keep_ckpts=1))
