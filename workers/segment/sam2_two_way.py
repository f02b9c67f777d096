"""SAM2's two-way transformer for many point prompts on one image, per-prompt image keys
kept in factored form.

Every prompt starts from the same image keys ``keys0`` (N,C). A block adds a rank-(H*T)
update (image->token attention: softmax weights A (N,H*T) times token values M (H*T,C))
and a LayerNorm, so after any number of blocks a prompt's keys are exactly

    keys = r[:, None] * (keys0 * g) + L @ R        r (N,), g (C,), L (N,K), R (K,C)

with ``g`` the product of the norms' weights (the same for all prompts), ``r`` the
product of the norms' per-row 1/std, and K = (H*T + 2) per block (the update, the mean
and the bias). Any linear map W of the keys is then ``r * ((keys0 * g) @ W) + L @ (R @ W)``:
the first product is shared by all prompts and made once per image, the second costs
N x K x width instead of N x C x width. The token side needs the keys only through such
maps (attention logits and values, and the first upscaling convolution, which is
per-pixel linear), so per-prompt keys are built explicitly only for the LayerNorm
statistics of the next block.

Head layout: logits are (H, B, T, N), heads first, so that the shared products are one
batched matrix product over heads for all prompts of a chunk. The key bias is dropped
from token->image logits (constant over the softmax axis), and the value bias added after
pooling (softmax weights sum to 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class FactoredKeys:
    """B prompts' image keys (B,N,C) = r[..., None] * (keys0 * g) + Lt^T @ R, never built.

    r (B,N) row scales; Lt (B,K,N) left factor, stored transposed (K rows of length N);
    R (B,K,C) right factor. ``g`` lives in the shared products (``SharedImage``)."""

    r: Tensor
    Lt: Tensor
    R: Tensor

    def after_norm(self, a_t: Tensor, m: Tensor, mean: Tensor, inv_std: Tensor,
                   norm: Any) -> FactoredKeys:
        """The keys of LayerNorm(keys + A @ M): a_t (B,H*T,N) = A^T, m (B,H*T,C), mean and
        inv_std (B,N) the statistics of keys + A @ M over C, ``norm`` the nn.LayerNorm."""
        d = inv_std.unsqueeze(1)  # (B,1,N)
        ones = torch.ones_like(d)
        lt = torch.cat((self.Lt * d, a_t * d, -(mean.unsqueeze(1) * d), ones), 1)
        gamma, beta = norm.weight, norm.bias
        B = m.shape[0]
        r_rows = torch.cat((self.R * gamma, m * gamma, gamma.expand(B, 1, -1),
                            beta.expand(B, 1, -1)), 1)
        return FactoredKeys(self.r * inv_std, lt, r_rows)


@dataclass
class SharedImage:
    """Per-image constants: for each block after the first (index ``l - 1``) the shared
    products (keys0 * g_l) W^T of its token->image key/value and image->token query
    projections, and pe W^T of its key/query projections, each head-major (H,N,dh); the
    same for the final attention; ``base_final`` = keys0 * g_final (N,C) for the first
    upscaling convolution."""

    t2i_k: list[Tensor]
    t2i_v: list[Tensor]
    t2i_pe: list[Tensor]
    i2t_q: list[Tensor]
    i2t_pe: list[Tensor]
    base_final: Tensor
    first: tuple[Tensor, Tensor, Tensor]  # first block: k, v (N,Ci) and q heads (H,N,dh)


def _heads(x: Tensor, heads: int) -> Tensor:
    """(N, H*dh) -> (H, N, dh), contiguous."""
    return x.reshape(x.shape[0], heads, -1).transpose(0, 1).contiguous()


def shared_image(tf: Any, keys0: Tensor, pe: Tensor) -> SharedImage:
    """The prompt-independent products of the transformer ``tf`` for keys0, pe (N,C)."""
    blocks = list(tf.layers)
    first = blocks[0]
    x0 = keys0 + pe
    t2i0, i2t0 = first.cross_attn_token_to_image, first.cross_attn_image_to_token
    out = SharedImage([], [], [], [], [], keys0, (
        t2i0.k_proj(x0), t2i0.v_proj(keys0), _heads(i2t0.q_proj(x0), i2t0.num_heads)))
    g = torch.ones_like(keys0[0])
    for prev, blk in zip(blocks, [*blocks[1:], None], strict=True):
        g = g * prev.norm4.weight
        base = keys0 * g
        t2i = tf.final_attn_token_to_image if blk is None else blk.cross_attn_token_to_image
        h = t2i.num_heads
        out.t2i_k.append(_heads(base @ t2i.k_proj.weight.t(), h))
        out.t2i_v.append(_heads(base @ t2i.v_proj.weight.t(), h))
        out.t2i_pe.append(_heads(pe @ t2i.k_proj.weight.t(), h))
        if blk is not None:
            i2t = blk.cross_attn_image_to_token
            out.i2t_q.append(_heads(base @ i2t.q_proj.weight.t(), i2t.num_heads))
            out.i2t_pe.append(_heads(pe @ i2t.q_proj.weight.t(), i2t.num_heads))
        else:
            out.base_final = base
    return out


def _logits(keys: FactoredKeys | None, shared: Tensor, shared_pe: Tensor | None,
            weight: Tensor, vec: Tensor) -> Tensor:
    """sum_d ((keys + pe) W^T)[b,n,h,d] * vec[b,t,h,d] as (H,B,T,N).

    shared (H,N,dh) = (keys0 * g) W^T (or, with ``keys`` None, the whole shared projection);
    shared_pe (H,N,dh) = pe W^T; weight W (H*dh, C); vec (B,T,H,dh)."""
    B, T, H, dh = vec.shape
    N = shared.shape[1]
    vh = vec.permute(2, 0, 1, 3).reshape(H, B * T, dh)
    out = torch.bmm(vh, shared.transpose(1, 2))  # (H, B*T, N)
    if keys is None:
        return out.view(H, B, T, N)
    out = out.view(H, B, T, N).mul_(keys.r.unsqueeze(1))
    if shared_pe is not None:
        out.view(H, B * T, N).baddbmm_(vh, shared_pe.transpose(1, 2))
    K = keys.R.shape[1]
    rw = (keys.R @ weight.t()).view(B, K, H, dh)
    z = torch.einsum("bkhd,bthd->bhtk", rw, vec).reshape(B, H * T, K)
    out += torch.bmm(z, keys.Lt).view(B, H, T, N).transpose(0, 1)
    return out


def _token_to_image(attn: Any, q_tok: Tensor, keys: FactoredKeys, shared_k: Tensor,
                    shared_pe: Tensor, shared_v: Tensor) -> Tensor:
    """Token->image attention of q_tok (B,T,C) (pe added) over factored keys (+ pe):
    returns out_proj(attention) (B,T,C)."""
    B, T, _ = q_tok.shape
    H = attn.num_heads
    dh = attn.internal_dim // H
    q = attn.q_proj(q_tok).view(B, T, H, dh) * dh**-0.5
    p = torch.softmax(_logits(keys, shared_k, shared_pe, attn.k_proj.weight, q), dim=-1)
    N = p.shape[-1]
    # shared part: sum_n p r_n (keys0 g W_v^T)_n, one product per head for all prompts
    pooled = torch.bmm((p * keys.r.unsqueeze(1)).view(H, B * T, N), shared_v)  # (H,B*T,dh)
    # factored part: (p^T L) (R W_v^T)
    K = keys.R.shape[1]
    p_l = torch.bmm(p.transpose(0, 1).reshape(B, H * T, N), keys.Lt.transpose(1, 2))
    rw = (keys.R @ attn.v_proj.weight.t()).view(B, K, H, dh)
    low = torch.einsum("bhtk,bkhd->bthd", p_l.view(B, H, T, K), rw)
    o = low + pooled.view(H, B, T, dh).permute(1, 2, 0, 3) + attn.v_proj.bias.view(H, dh)
    return attn.out_proj(o.reshape(B, T, H * dh))


def _token_to_shared_image(attn: Any, q_tok: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Token->image attention against image tokens shared by all prompts: q_tok (B,T,C);
    k = k_proj(keys0+pe), v = v_proj(keys0), both (N,Ci). Returns (B,T,C)."""
    B, T, _ = q_tok.shape
    H = attn.num_heads
    q = attn.q_proj(q_tok).reshape(B * T, H, -1).transpose(0, 1)  # (H, B*T, dh)
    k = k.reshape(-1, H, q.shape[-1]).transpose(0, 1)
    v = v.reshape(-1, H, q.shape[-1]).transpose(0, 1)
    o = F.scaled_dot_product_attention(q, k, v)  # (H, B*T, dh)
    return attn.out_proj(o.transpose(0, 1).reshape(B, T, -1))


def _image_to_token(attn: Any, logits: Tensor, queries: Tensor) -> tuple[Tensor, Tensor]:
    """Image->token attention weights and folded values from logits (H,B,T,N) over the
    tokens and queries (B,T,C): returns A^T (B,H*T,N) and M (B,H*T,C) with
    out_proj(attention) = A @ M; M[h,t] = v_proj(queries)[t,h] @ W_o[:, h]^T + b_o / H
    (each head's softmax sums to 1, so b_o / H on every row adds b_o once)."""
    H, B, T, N = logits.shape
    a_t = torch.softmax(logits, dim=2).transpose(0, 1).reshape(B, H * T, N)
    v = attn.v_proj(queries).reshape(B, T, H, -1)
    wo = attn.out_proj.weight.reshape(-1, H, v.shape[-1])  # (C, H, dh)
    m = torch.einsum("bthd,chd->bhtc", v, wo).reshape(B, H * T, -1) + attn.out_proj.bias / H
    return a_t, m


def _self_attention_block(blk: Any, queries: Tensor, query_pe: Tensor) -> Tensor:
    """Token self-attention + norm1 of a TwoWayAttentionBlock. queries (B,T,C)."""
    if blk.skip_first_layer_pe:
        queries = blk.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + blk.self_attn(q=q, k=q, v=queries)
    return blk.norm1(queries)


def two_way_transformer(tf: Any, keys0: Tensor, pe: Tensor, shared: SharedImage,
                        tokens: Tensor) -> tuple[Tensor, FactoredKeys]:
    """TwoWayTransformer (depth >= 1) for B prompts on one image.

    keys0 (N,C) image embedding + dense embedding (the same for all prompts), pe (N,C),
    shared = shared_image(tf, keys0, pe), tokens (B,T,C). Returns the queries (B,T,C) and
    the output keys in factored form, with ``shared.base_final`` as their ``keys0 * g``.
    """
    B = tokens.shape[0]
    N = keys0.shape[0]
    queries, query_pe = tokens, tokens
    factored: FactoredKeys | None = None
    keys = keys0.expand(B, -1, -1)  # explicit keys: the next LayerNorm's statistics
    for i, blk in enumerate(tf.layers):
        queries = _self_attention_block(blk, queries, query_pe)
        t2i, i2t = blk.cross_attn_token_to_image, blk.cross_attn_image_to_token
        if factored is None:
            out = _token_to_shared_image(t2i, queries + query_pe, shared.first[0],
                                         shared.first[1])
        else:
            out = _token_to_image(t2i, queries + query_pe, factored, shared.t2i_k[i - 1],
                                  shared.t2i_pe[i - 1], shared.t2i_v[i - 1])
        queries = blk.norm2(queries + out)
        queries = blk.norm3(queries + blk.mlp(queries))

        H = i2t.num_heads
        dh = i2t.internal_dim // H
        k = i2t.k_proj(queries + query_pe).view(B, -1, H, dh) * dh**-0.5
        if factored is None:
            logits = _logits(None, shared.first[2], None, i2t.q_proj.weight, k)
        else:
            logits = _logits(factored, shared.i2t_q[i - 1], shared.i2t_pe[i - 1],
                             i2t.q_proj.weight, k)
            bias = torch.einsum("bthd,hd->hbt", k, i2t.q_proj.bias.view(H, dh))
            logits += bias.unsqueeze(-1)
        a_t, m = _image_to_token(i2t, logits, queries)
        summed = torch.baddbmm(keys, a_t.transpose(1, 2), m)  # (B,N,C) before norm4
        n4 = blk.norm4
        keys, mean, inv_std = torch.native_layer_norm(summed, n4.normalized_shape, n4.weight,
                                                      n4.bias, n4.eps)
        if factored is None:
            factored = FactoredKeys(keys0.new_ones(B, N), keys0.new_zeros(B, 0, N),
                                    keys0.new_zeros(B, 0, keys0.shape[1]))
        factored = factored.after_norm(a_t, m, mean.squeeze(-1), inv_std.squeeze(-1), n4)
    assert factored is not None, "SAM2's two-way transformer has at least one block"
    fa = tf.final_attn_token_to_image
    out = _token_to_image(fa, queries + query_pe, factored, shared.t2i_k[-1],
                          shared.t2i_pe[-1], shared.t2i_v[-1])
    return tf.norm_final_attn(queries + out), factored
