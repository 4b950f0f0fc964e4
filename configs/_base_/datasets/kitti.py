# KITTI semantics in the mmseg folder layout written by `ablate data kitti` / `ablate data synth`:
# img_dir/{train,val}/*.png, ann_dir/{train,val}/*.png holding Cityscapes train ids (255 = ignore).
# The 19 Cityscapes classes and palette come from mmseg's CityscapesDataset; only the file
# suffixes differ. `ablate` sets data_root, crop size and image scale from the study file.
custom_imports = dict(imports=["ablate.metrics"], allow_failed_imports=False)

dataset_type = "CityscapesDataset"
data_root = "data/synth_kitti"
img_scale = (1242, 375)  # (w, h): KITTI frames
crop_size = (375, 750)  # (h, w)

# The paper's augmentations. Normalize and Pad run in the model's SegDataPreProcessor
# (mean/std, `size=crop_size`), the mmseg 1.x home of those two steps.
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomResize", scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=img_scale, keep_ratio=True),
    dict(type="LoadAnnotations"),
    dict(type="PackSegInputs"),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        img_suffix=".png",
        seg_map_suffix=".png",
        data_prefix=dict(img_path="img_dir/train", seg_map_path="ann_dir/train"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        img_suffix=".png",
        seg_map_suffix=".png",
        data_prefix=dict(img_path="img_dir/val", seg_map_path="ann_dir/val"),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader

val_evaluator = dict(type="PerClassIoUMetric", iou_metrics=["mIoU"])
test_evaluator = val_evaluator
