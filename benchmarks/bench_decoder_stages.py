"""Where the restructured SAM2 mask decoder spends its time: each stage per prompt, with
its floating-point work and the achieved GFLOP/s.

Runs the stages of ``sam2_decoder.decode_points`` one by one, timed, on grid prompts of a
rendered 1024x768 photo (seeded random weights), checks that the staged masks equal
``decode_points``'s exactly, and prints a table.

    python benchmarks/bench_decoder_stages.py --prompts 16 --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

STAGES = ("transformer", "heads", "up_conv1", "up_ln_gelu", "up_conv2_gelu", "up_hyper_mm",
          "up_shuffle")


def flops_per_prompt(n: int, c: int, heads: int, head_dim: int, tokens: int, c1: int,
                     c2: int, masks: int, ranks: tuple[int, int]) -> dict[str, float]:
    """Multiply-adds x 2 of each stage for one prompt over ``n`` image tokens of width ``c``.

    The transformer (sam2_two_way, two blocks): eleven products of a shared head-major
    image projection with the prompt's T token vectors (n x heads*head_dim x T), the two
    explicit rank-(heads*T) updates for the LayerNorm statistics (n x heads*T x c), and
    the factored keys' thin products (n x heads*T x K) three times with the first block's
    rank K1 and twice with both blocks' K2. The first upscaling convolution takes the
    factored keys: n x K2 x 4*c1.
    """
    ht, ci = heads * tokens, heads * head_dim
    k1, k2 = ranks
    transformer = 11 * n * ci * tokens + 2 * n * ht * c + 3 * n * ht * k1 + 2 * n * ht * k2
    return {"transformer": 2 * transformer, "up_conv1": 2 * n * k2 * 4 * c1,
            "up_conv2_gelu": 2 * 4 * n * c1 * 4 * c2, "up_hyper_mm": 2 * masks * 16 * n * c2}


def staged_decode(model: Any, embed: Any, high_res: list[Any], sparse: Any, dense: Any,
                  spent: dict[str, float], chunk: int) -> Any:
    """``decode_points``'s low-resolution logits, each stage timed into ``spent``."""
    import torch
    import torch.nn.functional as F

    from prodseg.workers.segment import sam2_decoder as d
    from prodseg.workers.segment import sam2_two_way as tw

    dec = model.sam_mask_decoder
    pe_img = model.sam_prompt_encoder.get_dense_pe()
    h, w = embed.shape[-2:]
    keys0 = (embed[0] + dense[0]).flatten(1).t().contiguous()
    pe = pe_img[0].flatten(1).t().contiguous()
    s = 1 if dec.pred_obj_scores else 0
    parts = [dec.iou_token.weight, dec.mask_tokens.weight]
    if s:
        parts.insert(0, dec.obj_score_token.weight)
    out_tokens = torch.cat(parts, 0)
    shared = tw.shared_image(dec.transformer, keys0, pe)
    w1, f1, w2, f0 = d._upscale_params(dec, high_res, (h, w))
    shared1 = shared.base_final @ w1
    _, ln1, act1, _, act2 = dec.output_upscaling
    c1, c2 = w1.shape[1] // 4, w2.shape[1] // 4
    low = embed.new_zeros(sparse.shape[0], dec.num_mask_tokens - 1, 4 * h, 4 * w)

    def timed(stage: str, fn: Any) -> Any:
        t = time.perf_counter()
        out = fn()
        spent[stage] += time.perf_counter() - t
        return out

    for c0 in range(0, sparse.shape[0], chunk):
        sp = sparse[c0 : c0 + chunk]
        tokens = torch.cat((out_tokens.expand(sp.shape[0], -1, -1), sp), 1)
        hs, keys = timed("transformer", lambda tokens=tokens: tw.two_way_transformer(
            dec.transformer, keys0, pe, shared, tokens))
        mto = hs[:, s + 1 : s + 1 + dec.num_mask_tokens]
        hyper = timed("heads", lambda mto=mto: torch.stack(
            [dec.output_hypernetworks_mlps[i](mto[:, i]) for i in range(1, dec.num_mask_tokens)],
            1))
        rw1 = timed("up_conv1", lambda keys=keys: keys.R @ w1)
        for j in range(sp.shape[0]):
            r, lt, rw, hy, out = keys.r[j], keys.Lt[j], rw1[j], hyper[j], low[c0 + j]
            for i0 in range(0, h, 16):
                ti, a = min(16, h - i0), i0 * w
                n = ti * w
                y = timed("up_conv1", lambda r=r, lt=lt, rw=rw, a=a, n=n: torch.addcmul(
                    f1[a : a + n], r[a : a + n, None], shared1[a : a + n]).addmm_(
                    lt[:, a : a + n].t(), rw).view(4 * n, c1))
                y = timed("up_ln_gelu", lambda y=y: act1(
                    F.layer_norm(y, (c1,), ln1.weight, ln1.bias, ln1.eps)))
                z = timed("up_conv2_gelu", lambda y=y, a=a, n=n: act2(
                    torch.addmm(f0[4 * a : 4 * (a + n)], y, w2).view(16 * n, c2)))
                m = timed("up_hyper_mm", lambda hy=hy, z=z, ti=ti: torch.mm(
                    hy, z.t()).view(hy.shape[0], ti, w, 2, 2, 2, 2))
                tile = out[:, 4 * i0 : 4 * (i0 + ti)].view(hy.shape[0], ti, 2, 2, w, 2, 2)
                timed("up_shuffle", lambda tile=tile, m=m: tile.copy_(
                    m.permute(0, 1, 3, 5, 2, 4, 6)))
    return low, tokens.shape[1], (c1, c2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam2", default="hiera_tiny")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--chunk", type=int, default=4, help="prompts per transformer pass")
    parser.add_argument("--repeats", type=int, default=2, help="the last one is reported")
    args = parser.parse_args()

    import numpy as np
    import torch

    from prodseg.producer.samples.scene import render_spin_set
    from prodseg.workers.models.builders import build_sam2_model
    from prodseg.workers.segment.sam2_candidates import ProposalParams, point_grid
    from prodseg.workers.segment.sam2_decoder import decode_points
    from prodseg.workers.segment.sam2_proposals import ProposalGenerator

    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    image = render_spin_set(n_views=2, height=768, width=1024, seed=0).views[1].image
    sam: Any = build_sam2_model(args.sam2, "random", Path("/nonexistent"), "cpu", 0)
    gen = ProposalGenerator(sam, ProposalParams())
    gen.set_image(image)
    p = gen.predictor
    grid = point_grid(32, 768, 1024)[:: max(1, 1024 // args.prompts)][: args.prompts]
    coords = p._transforms.transform_coords(torch.as_tensor(grid[:, None, :]), normalize=True,
                                            orig_hw=(768, 1024))
    labels = torch.as_tensor(np.ones((len(grid), 1)), dtype=torch.int)
    sparse, dense = sam.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    high_res = [level[-1].unsqueeze(0) for level in p._features["high_res_feats"]]
    embed = p._features["image_embed"][-1].unsqueeze(0)

    for _ in range(args.repeats):
        spent: dict[str, float] = defaultdict(float)
        low, tokens, (c1, c2) = staged_decode(sam, embed, high_res, sparse, dense, spent,
                                              args.chunk)
    same = torch.equal(low, decode_points(sam, embed, high_res, sparse, dense, chunk=args.chunk)[0])
    dec = sam.sam_mask_decoder
    n, c = embed.shape[-2] * embed.shape[-1], embed.shape[1]
    i2t = dec.transformer.layers[0].cross_attn_image_to_token
    rank1 = i2t.num_heads * tokens + 2  # per block: the update, the mean and the bias
    work = flops_per_prompt(n, c, i2t.num_heads, i2t.internal_dim // i2t.num_heads, tokens,
                            c1, c2, dec.num_mask_tokens - 1, (rank1, 2 * rank1))
    count = len(grid)
    print(f"{args.sam2}, {count} prompts, {torch.get_num_threads()} threads; staged masks equal "
          f"decode_points: {same}")
    print(f"{'stage':<16}{'ms/prompt':>11}{'MFLOP':>10}{'GFLOP/s':>10}")
    for stage in STAGES:
        ms = 1000 * spent[stage] / count
        mflop = work.get(stage, 0.0) / 1e6
        rate = f"{mflop / ms:.1f}" if mflop else "-"
        print(f"{stage:<16}{ms:>11.2f}{mflop:>10.1f}{rate:>10}")
    total = 1000 * sum(spent.values()) / count
    all_mflop = sum(work.values()) / 1e6
    print(f"{'total':<16}{total:>11.2f}{all_mflop:>10.1f}{all_mflop / total:>10.1f}")


if __name__ == "__main__":
    main()
