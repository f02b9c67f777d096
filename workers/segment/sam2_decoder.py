"""SAM2's mask decoder for many point prompts on one image, restructured for the CPU.

``decode_points`` computes the same function as

    model.sam_mask_decoder(image_embeddings, get_dense_pe(), sparse, dense,
                           multimask_output=True, repeat_image=True, high_res_features)

(equal to about 1e-6, tested against the stock module), in fp32, with the same weights,
but several times faster per prompt on a CPU, by exact algebra:

* The image side of the first two-way block is the same for every prompt: its
  projections (k/v for token->image, q for image->token) are computed once; nothing is
  ``repeat_interleave``'d, and the dense no-mask embedding and positional encoding are
  added once.
* After that, a prompt's image keys are the shared keys, row-scaled, plus a low-rank
  term (``sam2_two_way``): every projection of them is a shared product made once per
  image plus a thin per-prompt one, and only the LayerNorm statistics need the keys built.
* The two ``ConvTranspose2d(k=2, s=2)`` layers are per-pixel linear maps (no overlap):
  they run as matrix products in a sub-pixel-last layout, in tiles that stay in cache,
  and the pixel shuffle is applied once to the final masks. The first one takes the
  factored keys, so its per-prompt product is N x K x 4*c1 with K < C.

Other inputs (several images, mask prompts) and decoders of another structure go to the
stock module. On a GPU the stock module's batched kernels are the better choice; the
proposal generator uses this path on the CPU only.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from prodseg.workers.segment.lanes import cpu_lanes, in_lanes
from prodseg.workers.segment.sam2_two_way import shared_image, two_way_transformer


# ----------------------------------------------------------------------------- upscaling
def _convT2x2_as_linear(conv: Any) -> tuple[Tensor, Tensor]:
    """ConvTranspose2d(k=2,s=2) weight (Cin,Cout,2,2) -> matrix (Cin, 4*Cout) ordered (di,dj,o),
    bias (4*Cout)."""
    w = conv.weight
    cin, cout = w.shape[:2]
    return w.permute(0, 2, 3, 1).reshape(cin, 4 * cout), conv.bias.repeat(4)


def _feat_to_subpixel(f: Tensor, levels: int) -> Tensor:
    """High-res feature (1,c,h*2^L,w*2^L) -> (h*w*4^L, c) in the sub-pixel-last layout
    (i, j, di_1, dj_1, ..., di_L, dj_L, c) matching repeated 2x2 per-pixel linear upsampling."""
    c, H, W = f.shape[1:]
    h, w = H >> levels, W >> levels
    f = f.reshape(c, h, *([2] * levels), w, *([2] * levels))
    # dims: 0=c, 1=i, 2..L+1 = di_k, L+2 = j, L+3.. = dj_k
    order = [1, levels + 2]
    for k in range(levels):
        order += [2 + k, levels + 3 + k]
    return f.permute(*order, 0).reshape(-1, c)


def _upscale_params(dec: Any, hr: list[Tensor] | None, hw: tuple[int, int]
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-image constants of output_upscaling: (w1 (C, 4*c1), f1 (N, 4*c1), w2 (c1, 4*c2),
    f0 (4N, 4*c2)). w1/w2 are the ConvTranspose2d weights as matrices; f1/f0 are their biases
    plus the high-res features (already conv_s1/conv_s0-projected by the image encoder path), in
    the sub-pixel-last row layout of the per-pixel matmul outputs."""
    dc1, _, _, dc2, _ = dec.output_upscaling
    h, w = hw
    w1, b1 = _convT2x2_as_linear(dc1)
    w2, b2 = _convT2x2_as_linear(dc2)
    f1 = b1.expand(h * w, -1)
    f0 = b2.expand(4 * h * w, -1)
    if hr is not None:
        f1 = f1 + _feat_to_subpixel(hr[1], 1).reshape(h * w, -1)
        f0 = f0 + _feat_to_subpixel(hr[0], 2).reshape(4 * h * w, -1)
    return w1, f1.contiguous(), w2, f0.contiguous()


def _upscale_and_masks(dec: Any, keys: tuple[Tensor, Tensor, Tensor], hyper: Tensor,
                       hw: tuple[int, int], up: tuple[Tensor, Tensor, Tensor, Tensor],
                       out: Tensor, rows: int = 16) -> None:
    """output_upscaling + hypernetwork product for ONE prompt, in tiles of `rows` feature-map
    rows so that the intermediates stay in cache.

    keys: the prompt's transformer output keys through the first convolution, factored
    (see sam2_two_way): (r (N,), Lt (K,N), RW1 (K, 4*c1)) with keys @ w1 =
    r * shared1 + Lt^T @ RW1, shared1 = up[0] = (keys0 * g) @ w1 (N, 4*c1);
    hyper (K',C/8) mask-token hypernetwork outputs; up = _upscale_params(...) with w1
    replaced by shared1; out (K',4h,4w) is written in place.
    """
    _, ln1, act1, _, act2 = dec.output_upscaling
    shared1, f1, w2, f0 = up
    r, lt, rw1 = keys
    h, w = hw
    K = hyper.shape[0]
    c1, c2 = shared1.shape[1] // 4, w2.shape[1] // 4
    for i0 in range(0, h, rows):
        ti = min(rows, h - i0)
        a, n = i0 * w, ti * w  # first pixel, number of pixels in the tile
        y = torch.addcmul(f1[a:a + n], r[a:a + n, None], shared1[a:a + n])
        y = y.addmm_(lt[:, a:a + n].t(), rw1).view(4 * n, c1)  # rows (i,j,di,dj)
        y = act1(F.layer_norm(y, (c1,), ln1.weight, ln1.bias, ln1.eps))
        z = act2(torch.addmm(f0[4 * a:4 * (a + n)], y, w2).view(16 * n, c2))  # (i,j,di,dj,ei,ej)
        m = torch.mm(hyper, z.t()).view(K, ti, w, 2, 2, 2, 2)
        tile = out[:, 4 * i0 : 4 * (i0 + ti)].view(K, ti, 2, 2, w, 2, 2)
        tile.copy_(m.permute(0, 1, 3, 5, 2, 4, 6))


# ----------------------------------------------------------------------------- entry point
def _supported(dec: Any) -> bool:
    """True if `dec` (a MaskDecoder) has the structure this module re-implements: a
    TwoWayTransformer of TwoWayAttentionBlocks with plain Attention layers and the stock
    output_upscaling (2x ConvTranspose2d(k=2, s=2, no padding/groups) + LayerNorm2d)."""
    from sam2.modeling.sam.transformer import Attention, TwoWayAttentionBlock, TwoWayTransformer
    from sam2.modeling.sam2_utils import LayerNorm2d

    tf = dec.transformer
    if type(tf) is not TwoWayTransformer or any(
            type(b) is not TwoWayAttentionBlock for b in tf.layers):
        return False
    attns = [tf.final_attn_token_to_image] + [
        a for b in tf.layers
        for a in (b.self_attn, b.cross_attn_token_to_image, b.cross_attn_image_to_token)]
    if any(type(a) is not Attention or a.kv_in_dim != a.embedding_dim for a in attns):
        return False
    if len(dec.output_upscaling) != 5 or type(dec.output_upscaling[1]) is not LayerNorm2d:
        return False
    for conv in (dec.output_upscaling[0], dec.output_upscaling[3]):
        if not (isinstance(conv, torch.nn.ConvTranspose2d) and conv.kernel_size == (2, 2)
                and conv.stride == (2, 2) and conv.padding == (0, 0)
                and conv.output_padding == (0, 0)
                and conv.dilation == (1, 1) and conv.groups == 1 and conv.bias is not None):
            return False
    return True


def _dense_is_shared(dense: Tensor) -> bool:
    """True if all prompts carry the same dense embedding (e.g. the no-mask embedding)."""
    return (dense.shape[0] == 1 or dense.stride(0) == 0
            or torch.equal(dense, dense[:1].expand_as(dense)))


@torch.inference_mode()
def decode_points(model: Any, image_embed: Tensor, high_res_feats: list[Tensor], sparse: Tensor,
                  dense: Tensor, chunk: int = 4,
                  skip_below: float | None = None) -> tuple[Tensor, Tensor]:
    """Multimask decoding of B prompts on one image.

    ``skip_below``: a prompt whose three predicted IoUs are all at or below it gets zero
    logits instead of its masks. The predicted IoU comes out of the transformer, before
    the upscaling that makes most of a mask's cost, so a generator that drops such
    candidates anyway (``pred_iou_thresh``) need not pay for them.

    model: SAM2Base (uses model.sam_mask_decoder and model.sam_prompt_encoder.get_dense_pe()).
    image_embed (1,C,h,w); high_res_feats [(1,C/8,4h,4w), (1,C/4,2h,2w)] (ignored if the decoder
    does not use them); sparse (B,S,C); dense (B,C,h,w). Prompts are processed in chunks of
    `chunk` to bound memory. Returns (low_res_logits (B,3,4h,4w), iou (B,3)) exactly like the
    reference with multimask_output=True, repeat_image=True.

    Falls back to the stock decoder for inputs/configurations it does not restructure: more
    than one image, per-prompt dense embeddings (mask inputs), or a non-standard decoder.
    """
    dec = model.sam_mask_decoder
    image_pe = model.sam_prompt_encoder.get_dense_pe()
    use_hr = dec.use_high_res_features
    if (image_embed.shape[0] != 1 or not _dense_is_shared(dense) or not _supported(dec)
            or (use_hr and any(f.shape[0] != 1 for f in high_res_feats))):
        low, iou, _, _ = dec(image_embeddings=image_embed, image_pe=image_pe,
                             sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                             multimask_output=True, repeat_image=True,
                             high_res_features=high_res_feats if use_hr else None)
        return low, iou

    h, w = image_embed.shape[-2:]
    keys0 = (image_embed[0] + dense[0]).flatten(1).t().contiguous()  # (N,C)
    pe = image_pe[0].flatten(1).t().contiguous()  # (N,C)
    hr = high_res_feats if dec.use_high_res_features else None
    s = 1 if dec.pred_obj_scores else 0
    parts = [dec.iou_token.weight, dec.mask_tokens.weight]
    if s:
        parts.insert(0, dec.obj_score_token.weight)
    out_tokens = torch.cat(parts, 0)

    shared = shared_image(dec.transformer, keys0, pe)
    w1, f1, w2, f0 = _upscale_params(dec, hr, (h, w))
    up = (shared.base_final @ w1, f1, w2, f0)
    B = sparse.shape[0]
    low = image_embed.new_zeros(B, dec.num_mask_tokens - 1, 4 * h, 4 * w)

    @torch.inference_mode()
    def decode_span(lo: int, hi: int) -> Tensor:
        """Prompts lo..hi into ``low``; returns their predicted IoUs (hi-lo, 3)."""
        ious = []
        for c0 in range(lo, hi, chunk):
            sp = sparse[c0:min(c0 + chunk, hi)]
            tokens = torch.cat((out_tokens.expand(sp.shape[0], -1, -1), sp), 1)
            hs, keys = two_way_transformer(dec.transformer, keys0, pe, shared, tokens)
            rw1 = keys.R @ w1  # (b, K, 4*c1)
            mask_tokens_out = hs[:, s + 1: s + 1 + dec.num_mask_tokens]
            # multimask output: only mask tokens 1.. are needed
            hyper = torch.stack([dec.output_hypernetworks_mlps[i](mask_tokens_out[:, i])
                                 for i in range(1, dec.num_mask_tokens)], 1)  # (b, K, C/8)
            iou = dec.iou_prediction_head(hs[:, s])[:, 1:]
            for j in range(sp.shape[0]):
                if skip_below is None or bool((iou[j] > skip_below).any()):
                    _upscale_and_masks(dec, (keys.r[j], keys.Lt[j], rw1[j]), hyper[j], (h, w),
                                       up, low[c0 + j])
            ious.append(iou)
        return torch.cat(ious) if ious else image_embed.new_zeros(0, dec.num_mask_tokens - 1)

    spans = prompt_spans(B, chunk, cpu_lanes(low.device, B))
    return low, torch.cat(in_lanes(lambda span: decode_span(*span), spans, len(spans)))


def prompt_spans(count: int, chunk: int, lanes: int) -> list[tuple[int, int]]:
    """``count`` prompts split into at most ``lanes`` contiguous spans of whole chunks
    (``lanes.in_lanes`` runs one span per core)."""
    chunks = max(1, -(-count // chunk))
    lanes = max(1, min(lanes, chunks))
    bounds = [min(count, chunk * (chunks * i // lanes)) for i in range(lanes + 1)]
    return [(lo, hi) for lo, hi in pairwise(bounds) if hi > lo] or [(0, 0)]
