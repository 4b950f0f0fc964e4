# Table 1, row "UNet" (UNet-S5-D16 with an FCN head), mmseg's default 20k schedule.
# Model as in mmseg's unet-s5-d16_fcn_4xb4-160k_cityscapes-512x1024.py (whole-image inference).
# UNet's four 2x down-samplings need both input sides divisible by 16: 375x1242 is not. The
# nearest accepted size is 368x1248 (h: 368 is 7 rows away, 384 is 9; w: 1248 is 6 columns
# away, 1232 is 10), so Table 1's row is counted at `--shape 368 1248`. For training and testing
# the batch is padded instead (never cropped): 375x750 crops to 384x752 (padding ignored by the
# loss) and 375x1242 test images to 384x1248 (mmseg crops the logits back). A study that sets
# its own crop must pick one divisible by 16, since it replaces `data_preprocessor.size`.
_base_ = [
    "mmseg::_base_/models/fcn_unet_s5-d16.py",
    "../_base_/datasets/kitti.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]
data_preprocessor = dict(size=(384, 752), test_cfg=dict(size_divisor=16))
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    decode_head=dict(num_classes=19),
    auxiliary_head=dict(num_classes=19),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
default_hooks = dict(checkpoint=dict(save_best="mIoU", rule="greater", max_keep_ckpts=1))
