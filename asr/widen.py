"""Growing a trained model's LSTMs to more units per direction without changing what it outputs.

A small model that no longer fits even its training data better (its CER on utterances it trained on is close to
its CER on new ones) needs more units, but training a larger one from scratch repeats everything the small one
learned. Widening keeps every trained weight and adds units whose outgoing weights start at zero (the zero variant
of Net2WiderNet, Chen et al., 2016, "Net2Net"): the added units compute from the start, but nothing reads them
yet, so the widened model emits exactly the small one's log-probs. Training then finds the zero weights'
gradients non-zero and puts the new units to use.

`nn.LSTM` keeps each layer's gates stacked as [input, forget, cell, output] blocks of `hidden` rows, and a layer
above the first reads [forward units, backward units] of the one below; both layouts are kept when growing.
"""

from __future__ import annotations

import math

import torch

GATES = 4  # input, forget, cell, output


def _grow_gate_rows(old: torch.Tensor, hidden: int, new_hidden: int, fill: torch.Tensor) -> torch.Tensor:
    """(4 * hidden, ...) -> (4 * new_hidden, ...): each gate block keeps its old rows and takes the rest from
    `fill` (4 * new_hidden, ...)."""
    grown = fill.clone()
    for gate in range(GATES):
        grown[gate * new_hidden:gate * new_hidden + hidden] = old[gate * hidden:(gate + 1) * hidden]
    return grown


def _place_directions(old: torch.Tensor, hidden: int, new_hidden: int) -> torch.Tensor:
    """Columns [forward hidden, backward hidden] -> [forward new_hidden, backward new_hidden], the new ones zero,
    so nothing reads the added units."""
    grown = old.new_zeros(old.shape[0], 2 * new_hidden)
    grown[:, :hidden] = old[:, :hidden]
    grown[:, new_hidden:new_hidden + hidden] = old[:, hidden:]
    return grown


def widen_lstm_state(state: dict[str, torch.Tensor], wanted: dict[str, torch.Tensor], num_layers: int,
                     hidden: int, new_hidden: int) -> dict:
    """A state dict of a `BiLstmCtc` with `hidden` LSTM units per direction, grown to the shapes of `wanted` (the
    same model with `new_hidden`), computing the same function. The added units' incoming weights are drawn as
    `nn.LSTM` draws its own, uniform in +-1/sqrt(new_hidden)."""
    bound = 1.0 / math.sqrt(new_hidden)

    def fresh(shape) -> torch.Tensor:
        return torch.empty(shape).uniform_(-bound, bound)

    grown = dict(state)
    for layer in range(num_layers):
        for suffix in ("", "_reverse"):
            name = f"lstm.weight_ih_l{layer}{suffix}"
            weights = state[name]
            if layer > 0:  # reads the layer below's two directions
                weights = _place_directions(weights, hidden, new_hidden)
            # The added units read everything: what they compute reaches nothing yet.
            grown[name] = _grow_gate_rows(weights, hidden, new_hidden, fresh(wanted[name].shape))
            name = f"lstm.weight_hh_l{layer}{suffix}"
            recurrent = state[name]  # (4 * hidden, hidden): the old units must not read the added ones
            recurrent = torch.cat([recurrent, recurrent.new_zeros(recurrent.shape[0], new_hidden - hidden)], dim=1)
            grown[name] = _grow_gate_rows(recurrent, hidden, new_hidden, fresh(wanted[name].shape))
            for bias in ("bias_ih", "bias_hh"):
                name = f"lstm.{bias}_l{layer}{suffix}"
                grown[name] = _grow_gate_rows(state[name], hidden, new_hidden, fresh(wanted[name].shape))
    grown["output.weight"] = _place_directions(state["output.weight"], hidden, new_hidden)
    return grown
