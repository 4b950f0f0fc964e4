# Table 1, row "Swin v1 Tiny + SegFormer head", mmseg's default 20k schedule.
# Backbone as in mmseg's upernet_swin base with the Swin-T settings of
# swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py; the UPerNet head is
# replaced by mmseg's SegFormer all-MLP head on the four Swin stages, and, as in the SegFormer
# configs, there is no auxiliary head. The head keeps the base's 512 channels (UPerHead's width;
# mmseg's SegFormer configs use 256): that is the model Table 1 counts, 79.472 GFLOPs at 375x1242
# here and in the paper, where 256 channels would give 54.8 G. No ImageNet weights are downloaded.
_base_ = [
    "mmseg::_base_/models/upernet_swin.py",
    "../_base_/datasets/kitti.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]
data_preprocessor = dict(size={{_base_.crop_size}})
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        init_cfg=None,
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        use_abs_pos_embed=False,
        drop_path_rate=0.3,
        patch_norm=True,
    ),
    decode_head=dict(
        _delete_=True,
        type="SegformerHead",
        in_channels=[96, 192, 384, 768],
        in_index=[0, 1, 2, 3],
        channels=512,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=dict(type="SyncBN", requires_grad=True),
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    auxiliary_head=None,
)
default_hooks = dict(checkpoint=dict(save_best="mIoU", rule="greater", max_keep_ckpts=1))
