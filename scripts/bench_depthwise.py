"""Forward+backward time of one dilated 3x3 depth-wise conv on the DAFormer head's fusion
map (2x1024x64x64 at 256 crops) by memory layout and dtype: docs/PERFORMANCE.md's table.

Usage: .venv/bin/python scripts/bench_depthwise.py   (2 threads, nothing else running)
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F


def _median_ms(x: torch.Tensor, weight: torch.Tensor, dilation: int, repeats: int = 5) -> float:
    _conv_step(x, weight, dilation)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        _conv_step(x, weight, dilation)
        seconds.append(time.perf_counter() - start)
    return 1e3 * statistics.median(seconds)


def _conv_step(x: torch.Tensor, weight: torch.Tensor, dilation: int) -> None:
    """x (2,1024,64,64), weight (1024,1,3,3): one depth-wise conv forward and backward."""
    out = F.conv2d(x, weight, padding=dilation, dilation=dilation, groups=x.shape[1])
    out.backward(torch.ones_like(out))


def main() -> None:
    torch.set_num_threads(2)
    base = torch.randn(2, 1024, 64, 64)
    print("layout dtype  " + "  ".join(f"dilation {d:>2}" for d in (6, 12, 18)))
    for dtype in (torch.float32, torch.bfloat16):
        for layout in (torch.contiguous_format, torch.channels_last):
            x = base.to(dtype).contiguous(memory_format=layout).requires_grad_()
            row = []
            for dilation in (6, 12, 18):
                weight = torch.randn(1024, 1, 3, 3, dtype=dtype, requires_grad=True)

                row.append(f"{_median_ms(x, weight, dilation):8.0f} ms")
            name = "NCHW" if layout == torch.contiguous_format else "NHWC"
            print(f"{name} {str(dtype)[6:]:>8}  " + "  ".join(row))


if __name__ == "__main__":
    main()
