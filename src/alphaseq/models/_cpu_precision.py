"""Whether this CPU runs a recurrent layer under bf16 autocast.

PyTorch sends an LSTM under CPU autocast to oneDNN, whose bf16 LSTM kernel needs
AVX-512 (BF16) or AMX; on other CPUs (AVX2-only AMD EPYC, older Intel) it raises
"could not create a primitive descriptor for the LSTM forward propagation primitive".
Such a layer then runs in float32 inside the autocast region, the rest of the model
stays in bf16: the same choice autocast itself makes for ops it has no low-precision
kernel for.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn

logger = logging.getLogger("alphaseq")


@functools.cache
def cpu_bf16_supported(rnn_class: type[nn.RNNBase]) -> bool:
    """True when ``rnn_class`` runs forward and backward under CPU bf16 autocast here."""
    probe = rnn_class(2, 2, batch_first=True)
    x = torch.zeros(1, 2, 2, requires_grad=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = probe(x)
        out.float().sum().backward()
    except RuntimeError:
        logger.info(
            "this CPU has no bf16 %s kernel: under bf16 autocast the recurrent layer "
            "runs in float32 and the rest of the model in bf16",
            rnn_class.__name__,
        )
        return False
    return True


def run_recurrent(rnn: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """``rnn(x)``'s outputs (B, L, D), in float32 where this CPU cannot run it in bf16."""
    if (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and not cpu_bf16_supported(type(rnn))
    ):
        with torch.autocast("cpu", enabled=False):
            return rnn(x.float())[0]
    return rnn(x)[0]
