"""Early-exit students: a trained student's backbone cut into segments, with a small exit head
after chosen blocks. A frame can stop at the first exit that is confident enough; the final exit
is the student's own head, so with every exit ignored the network IS the plain student (same
parameters under ``backbone.``: a plain checkpoint loads into it).

``exits`` lists placements: the number of backbone blocks before each early exit, e.g. ``[2]``
puts one exit after the 2nd block. Blocks: cnn3 has 3 (its conv blocks), mobilenet1d has 7 (the
stem is part of the first inverted residual, the last 1x1 conv part of the seventh), the mini
Inception-ResNet 9 at its default depth (the stem, then each residual and reduction block:
A, A, Reduction-A, B, B, Reduction-B, C, C; cumulative FLOPs after blocks 1-8: 10, 15, 20, 36,
48, 59, 77, 89 %). Any architecture of the registry can take exits: the split comes from its
model interface (``models/interface.py``: ``backbone_blocks``, ``final_head``, ``block_widths``).
"""

from torch import nn

from .interface import ModRecModel
from .layers import GlobalAvgMaxPool1d
from .registry import create_model, register_model


class ExitHead(nn.Module):
    """Pool + one hidden layer: cheap next to the blocks it lets a frame skip.

    With ``conv_channels`` > 0 a depthwise-separable convolution (kernel ``conv_kernel``, then a 1x1
    to ``conv_channels``, each with batch norm and ReLU) comes before the pool: an early feature map
    has seen only a few samples at each position, and pooling it straight away keeps per-channel
    statistics and loses how neighbouring positions relate.
    """

    def __init__(self, channels, hidden, n_classes, conv_channels=0, conv_kernel=5):
        super().__init__()
        if conv_channels:
            self.conv = nn.Sequential(
                nn.Conv1d(channels, channels, conv_kernel, padding=conv_kernel // 2, groups=channels, bias=False),
                nn.BatchNorm1d(channels), nn.ReLU(inplace=True),
                nn.Conv1d(channels, conv_channels, 1, bias=False), nn.BatchNorm1d(conv_channels), nn.ReLU(inplace=True))
            channels = conv_channels
        else:
            self.conv = nn.Identity()
        self.pool = GlobalAvgMaxPool1d()
        self.fc = nn.Sequential(nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_classes))

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)))


class EarlyExitNet(nn.Module):
    def __init__(self, backbone, placements, exit_hidden, n_classes, frame_len, exit_conv=0, exit_kernel=5):
        super().__init__()
        if not isinstance(backbone, ModRecModel):
            raise TypeError(f"early exits: {type(backbone).__name__} does not implement the model interface "
                            f"(models/interface.py: backbone_blocks, final_head)")
        blocks, final_head = backbone.backbone_blocks(), backbone.final_head()
        placements = [int(p) for p in placements]
        if not placements or sorted(set(placements)) != placements or placements[0] < 1 or placements[-1] >= len(blocks):
            raise ValueError(f"early exits: placements must increase within 1..{len(blocks) - 1} "
                             f"({type(backbone).__name__} has {len(blocks)} blocks), got {placements}")
        self.backbone = backbone  # owns every backbone parameter: state_dict keys stay backbone.*
        self.placements = placements
        bounds = [0, *placements, len(blocks)]
        # plain lists: the segments reuse the backbone's modules without registering them twice
        self._segments = [nn.Sequential(*blocks[a:b]) for a, b in zip(bounds, bounds[1:])]
        self._final_head = final_head
        widths = backbone.block_widths(frame_len)
        self.exits = nn.ModuleList(ExitHead(widths[p - 1], exit_hidden, n_classes, exit_conv, exit_kernel)
                                   for p in placements)

    @property
    def n_exits(self):
        return len(self.placements) + 1

    def forward_exits(self, x):
        """Logits of every exit, early ones first, the backbone's own head last."""
        outs = []
        for segment, head in zip(self._segments, [*self.exits, self._final_head]):
            x = segment(x)
            outs.append(head(x))
        return outs

    def forward(self, x):
        """The final exit: exactly the plain student."""
        for segment in self._segments:
            x = segment(x)
        return self._final_head(x)

    def stages(self):
        """One module per exit for staged inference: stage k maps its input (raw I/Q for k = 0,
        else the previous stage's feature map) to (exit logits, feature map); the last stage
        returns its logits alone."""
        heads = [*self.exits, self._final_head]
        return [_Stage(seg, head, last=k == len(heads) - 1) for k, (seg, head) in enumerate(zip(self._segments, heads))]


class _Stage(nn.Module):
    def __init__(self, segment, head, last):
        super().__init__()
        self.segment, self.head, self.last = segment, head, last

    def forward(self, x):
        feats = self.segment(x)
        logits = self.head(feats)
        return logits if self.last else (logits, feats)


def _early_exit(student, n_classes, frame_len, exits, exit_hidden, exit_conv, exit_kernel, backbone_cfg):
    backbone = create_model(student, n_classes=n_classes, frame_len=frame_len, **dict(backbone_cfg or {}))
    return EarlyExitNet(backbone, exits, exit_hidden, n_classes, frame_len, exit_conv, exit_kernel)


@register_model
def cnn3_ee(n_classes=11, frame_len=128, exits=(1,), exit_hidden=32, exit_conv=0, exit_kernel=5, backbone_cfg=None):
    """cnn3 with early exits; ``backbone_cfg`` is cnn3's own config; ``exit_conv`` > 0 gives each
    exit head a depthwise-separable convolution of that many channels (see ExitHead)."""
    return _early_exit("cnn3", n_classes, frame_len, exits, exit_hidden, exit_conv, exit_kernel, backbone_cfg)


@register_model
def mobilenet1d_ee(n_classes=11, frame_len=128, exits=(2,), exit_hidden=32, exit_conv=0, exit_kernel=5, backbone_cfg=None):
    """mobilenet1d with early exits; ``backbone_cfg`` is mobilenet1d's own config; ``exit_conv`` as
    for cnn3_ee."""
    return _early_exit("mobilenet1d", n_classes, frame_len, exits, exit_hidden, exit_conv, exit_kernel, backbone_cfg)


@register_model
def mini_inception_resnet_ee(n_classes=11, frame_len=128, exits=(3,), exit_hidden=32, exit_conv=0, exit_kernel=5,
                             backbone_cfg=None):
    """mini_inception_resnet with early exits; ``backbone_cfg`` is its own config; ``exit_conv`` as
    for cnn3_ee."""
    return _early_exit("mini_inception_resnet", n_classes, frame_len, exits, exit_hidden, exit_conv, exit_kernel,
                       backbone_cfg)
