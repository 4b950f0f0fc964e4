# Table 1, row "PSPNet & ResNet18" (ResNetV1c-18, output stride 8), mmseg's default 20k schedule.
# The R101 config with depth 18 and the narrower head of mmseg's
# pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py.
_base_ = "./pspnet_r101-d8_kitti.py"
model = dict(
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64),
)
