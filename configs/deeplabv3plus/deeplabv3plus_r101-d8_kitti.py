# Table 1, row "DeepLabV3+ & ResNet101" (ResNetV1c-101, output stride 8), mmseg's default 20k schedule.
# The R50 config with a deeper backbone, as mmseg's own r101 configs are written.
_base_ = "./deeplabv3plus_r50-d8_kitti.py"
model = dict(backbone=dict(depth=101))
