# Table 1, row "DeepLabV3+ & ResNet18" (ResNetV1c-18, output stride 8), mmseg's default 20k schedule.
# The R50 config with depth 18 and the narrower head of mmseg's
# deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py.
_base_ = "./deeplabv3plus_r50-d8_kitti.py"
model = dict(
    backbone=dict(depth=18),
    decode_head=dict(c1_in_channels=64, c1_channels=12, in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64),
)
