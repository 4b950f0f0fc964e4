# Table 1, row "SegFormer B5" (MiT-B5 encoder + all-MLP head), mmseg's default 20k schedule.
# The B2 config with B5's deeper third stage, as in mmseg's segformer_mit-b5 configs; the
# ImageNet encoder is attached by the study, nothing is downloaded here.
_base_ = "./segformer_mit-b2_kitti.py"
model = dict(backbone=dict(num_layers=[3, 6, 40, 3]))
