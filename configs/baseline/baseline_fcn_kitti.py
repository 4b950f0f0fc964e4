# Table 1, row "Baseline": the plain FCN-like encoder-decoder (67.003 GFLOPs at 375x1242 in the paper).
# Encoder: four stride-2 3x3 conv stages (64, 128, 256, 512) and a max-pooled 2048-channel
# bottleneck; decoder: four 4x4 deconvolution stages with FCN skips back to 1/2, then the logits
# are resized bilinearly. See ablate/models/baseline.py for how the paper's description is read.
_base_ = [
    "../_base_/datasets/kitti.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]
custom_imports = dict(imports=["ablate.metrics", "ablate.models"], allow_failed_imports=False)

norm_cfg = dict(type="SyncBN", requires_grad=True)
data_preprocessor = dict(
    type="SegDataPreProcessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size={{_base_.crop_size}},
)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type="PlainFCNEncoder",
        in_channels=3,
        channels=(64, 128, 256, 512, 2048),
        num_convs=(2, 2, 2, 2),
        bottleneck_kernels=(3, 1),
        out_indices=(0, 1, 2, 3, 4),
        norm_cfg=norm_cfg,
    ),
    decode_head=dict(
        type="PlainFCNDecoderHead",
        in_channels=[64, 128, 256, 512, 2048],
        in_index=[0, 1, 2, 3, 4],
        input_transform="multiple_select",
        channels=64,
        num_convs=1,
        upsample_kernel=4,
        skip=True,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
default_hooks = dict(checkpoint=dict(save_best="mIoU", rule="greater", max_keep_ckpts=1))
