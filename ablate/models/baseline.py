"""The paper's Baseline of Table 1: a plain FCN-like encoder-decoder, as mmseg modules.

The paper describes it only in words ("four stride-2 3x3 conv downsampling stages (ReLU,
max-pooling; channels 64, 128, 256, 512, 2048) and four up-sampling stages (max-unpooling /
deconvolution) back to 1/2, then bilinear interpolation to the score map", 67.003 GFLOPs at
375x1242). This module reads that description as follows:

Encoder (`PlainFCNEncoder`, five outputs at strides 2, 4, 8, 16, 32):
  * four downsampling stages with 64, 128, 256 and 512 channels; each is a stride-2 3x3 conv
    followed by one more 3x3 conv (conv-BN-ReLU throughout);
  * a bottleneck stage reached by 2x2 max-pooling, holding a 3x3 conv to 2048 channels and a
    1x1 conv 2048 -> 2048 (FCN's convolutionalised fc6/fc7 pair).
Decoder (`PlainFCNDecoderHead`):
  * four up-sampling stages 1/32 -> 1/16 -> 1/8 -> 1/4 -> 1/2; each is a learned 4x4 stride-2
    deconvolution (FCN's 2x up-sampling kernel) to the channels of the encoder output at the
    target stride, added to that output (FCN skip), then one 3x3 conv;
  * `cls_seg` at 1/2; mmseg's `EncoderDecoder` resizes the logits bilinearly to the input.

Max-unpooling needs the pooling indices, which cannot travel through mmseg's backbone -> head
interface (a tuple of feature maps), so every up-sampling stage is a deconvolution. Odd sizes
(375 rows) are handled by cropping each up-sampled map to the skip's size. With these choices
mmengine's counter gives 67.566 GFLOPs at 375x1242 (Table 1: 67.003 G); the per-stage conv
counts and deconvolution kernel are arguments, for studies that want another reading.

Keeping the encoder a registered backbone that returns every stage lets the usual mmseg parts
(auxiliary FCN heads on any stage, OHEM samplers, losses) plug into the Baseline unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn

ConfigDict = dict[str, Any]


@MODELS.register_module()
class PlainFCNEncoder(BaseModule):
    """Stride-2 conv stages plus a max-pooled bottleneck; returns every stage's output.

    Args:
        in_channels: Image channels.
        channels: Output channels of the conv stages followed by the bottleneck's channels.
        num_convs: 3x3 convs per conv stage (the first one has stride 2), one entry per stage.
        bottleneck_kernels: Kernel size of each conv of the max-pooled bottleneck stage.
        out_indices: Which stage outputs to return (stage order, bottleneck last).
        norm_cfg / act_cfg: mmcv norm and activation of every conv.
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (64, 128, 256, 512, 2048),
        num_convs: Sequence[int] = (2, 2, 2, 2),
        bottleneck_kernels: Sequence[int] = (3, 1),
        out_indices: Sequence[int] = (0, 1, 2, 3, 4),
        norm_cfg: ConfigDict | None = None,
        act_cfg: ConfigDict | None = None,
        init_cfg: ConfigDict | list[ConfigDict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(channels) != len(num_convs) + 1:
            raise ValueError(f"channels {tuple(channels)} needs one entry per conv stage plus the bottleneck")
        if any(n < 1 for n in num_convs) or not bottleneck_kernels:
            raise ValueError("every stage needs at least one conv")
        if any(not 0 <= i <= len(num_convs) for i in out_indices):
            raise ValueError(f"out_indices {tuple(out_indices)} outside 0..{len(num_convs)}")
        norm_cfg = norm_cfg if norm_cfg is not None else dict(type="BN", requires_grad=True)
        act_cfg = act_cfg if act_cfg is not None else dict(type="ReLU")
        self.out_indices = tuple(out_indices)

        def conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> ConvModule:
            return ConvModule(
                c_in, c_out, kernel, stride=stride, padding=kernel // 2, norm_cfg=norm_cfg, act_cfg=act_cfg
            )

        self.stages = nn.ModuleList()
        c_in = in_channels
        for c_out, n in zip(channels[:-1], num_convs):
            layers = [conv(c_in, c_out, 3, stride=2)] + [conv(c_out, c_out, 3) for _ in range(n - 1)]
            self.stages.append(nn.Sequential(*layers))
            c_in = c_out
        bottleneck: list[nn.Module] = [nn.MaxPool2d(2, stride=2, ceil_mode=True)]
        for kernel in bottleneck_kernels:
            bottleneck.append(conv(c_in, channels[-1], kernel))
            c_in = channels[-1]
        self.stages.append(nn.Sequential(*bottleneck))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class _UpStage(nn.Module):
    """Deconvolution to the skip's stride and channels, crop to its size, add it, then convs."""

    def __init__(
        self,
        c_in: int,
        c_skip: int,
        c_out: int,
        *,
        kernel: int,
        num_convs: int,
        skip: bool,
        norm_cfg: ConfigDict | None,
        act_cfg: ConfigDict | None,
    ) -> None:
        super().__init__()
        self.skip = skip
        pad = (kernel - 1) // 2  # with output_padding below: exactly 2x the input size
        self.deconv = nn.ConvTranspose2d(
            c_in, c_skip, kernel, stride=2, padding=pad, output_padding=2 * pad - (kernel - 2), bias=norm_cfg is None
        )
        self.norm = build_norm_layer(norm_cfg, c_skip)[1] if norm_cfg is not None else nn.Identity()
        self.act = build_activation_layer(act_cfg) if act_cfg is not None else nn.Identity()
        convs = []
        for i in range(num_convs):
            out = c_out if i == num_convs - 1 else c_skip
            convs.append(ConvModule(c_skip, out, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg))
        self.convs = nn.Sequential(*convs)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm(self.deconv(x)))
        x = _match_size(x, skip.shape[2:])
        if self.skip:
            x = x + skip
        return self.convs(x)


def _match_size(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Crop an up-sampled map that overshoots an odd-sized skip; resize one that falls short."""
    h, w = int(size[0]), int(size[1])
    if x.shape[2] >= h and x.shape[3] >= w:
        return x[:, :, :h, :w]
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


@MODELS.register_module()
class PlainFCNDecoderHead(BaseDecodeHead):
    """Up-samples the deepest feature stage by stage back to the shallowest one's stride (1/2).

    Takes every backbone output (`input_transform='multiple_select'`); one up-sampling stage per
    step between consecutive outputs. The last stage ends at `channels`, which `cls_seg` maps to
    the classes.

    Args:
        num_convs: 3x3 convs after each deconvolution (at least one when the shallowest
            input's channels differ from `channels`).
        upsample_kernel: Deconvolution kernel size (stride 2); 4 is FCN's 2x kernel.
        skip: Add the encoder output of the same stride after each deconvolution.
    """

    def __init__(self, num_convs: int = 1, upsample_kernel: int = 4, skip: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("input_transform", "multiple_select")
        super().__init__(**kwargs)
        if self.input_transform != "multiple_select" or len(self.in_channels) < 2:
            raise ValueError("PlainFCNDecoderHead needs several backbone outputs (input_transform='multiple_select')")
        if upsample_kernel < 2:
            raise ValueError("upsample_kernel must be at least 2")
        if num_convs < 1 and self.in_channels[0] != self.channels:
            raise ValueError("num_convs=0 needs channels equal to the shallowest input's channels")
        chans = list(self.in_channels)
        self.up_stages = nn.ModuleList()
        for i in range(len(chans) - 1, 0, -1):
            c_out = self.channels if i == 1 else chans[i - 1]
            self.up_stages.append(
                _UpStage(
                    chans[i],
                    chans[i - 1],
                    c_out,
                    kernel=upsample_kernel,
                    num_convs=num_convs,
                    skip=skip,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg,
                )
            )

    def _forward_feature(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        feats = self._transform_inputs(inputs)
        x = feats[-1]
        for stage, skip in zip(self.up_stages, reversed(feats[:-1])):
            x = stage(x, skip)
        return x

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.cls_seg(self._forward_feature(inputs))
