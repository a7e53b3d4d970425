#!/usr/bin/env python3
"""The Python peers of workload W3: metalearn's text transformer meta-trained in PyTorch.

W3 (configs/w3.json) is few-shot intent classification on BANKING77: a pre-norm Transformer
encoder (2 layers, width 128, 4 heads, feed-forward 256, 32 tokens), mean-pooled over the real
tokens, a linear 5-way head; 5-way 5-shot episodes with 15 queries per class, meta-batch 8,
3 inner SGD steps at 0.1 on the head and the last encoder layer (meta.inner_layers = [-1]),
Adam 1e-3 outer. The peers read what metalearn measures on from the file
`build-release/metalearn_bench_meta --workload W3 --export-w3 FILE` writes: the initial
parameters (metalearn's, in its layout), 64 training episodes as metalearn's tokenizer encoded
them (the same token ids, masks and labels), the inner-loop settings, and metalearn's
meta-gradient of the first meta-batch for each algorithm.

The model is written functionally with the same parameter shapes and layout as
src/models/transformer.cpp: per layer x += out(attention(norm1(x))), x += ff2(gelu(ff1(norm2(x))))
with GELU as the erf formula 0.5 x (1 + erf(x / sqrt 2)) in second-order MAML and torch's fused
GELU otherwise (as metalearn chooses), -1e9 added to padded keys' scores, layer
norms with eps 1e-5, the final norm, mean pooling over unmasked tokens, a linear head.

  --impl per_task  one task at a time (torch.autograd.grad per inner step, create_graph for
                   second-order MAML; one backward per task), as most Python code does.
  --impl vmap      functorch.vmap over the meta-batch's tasks of an inner loop written with
                   functorch.grad (second-order MAML: functorch.grad of the vmapped query loss).

Algorithms: maml (second order), fomaml (the adapted weights' query gradient; the weights the
inner loop does not adapt get their plain query gradient), protonet (Snell et al. 2017:
negative squared Euclidean distance to the support's class means of the pooled encoding).

Before timing, the implementation's meta-gradient of the first meta-batch is compared with
metalearn's: the largest |difference| relative to metalearn's largest entry must be at most
1e-4, or the script exits 1 without a timing. Prints one JSON line:
{"impl", "algo", "iters", "meta_iters_per_sec", "max_rel_grad_diff", "threads", "malloc"}.

  build-release/metalearn_bench_meta --workload W3 --export-w3 /tmp/w3.pt
  /usr/bin/python3 scripts/peers/w3_transformer.py --data /tmp/w3.pt --impl vmap --algo maml
"""
import argparse
import json
import math
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', required=True, help='the file metalearn_bench_meta --export-w3 wrote')
    p.add_argument('--impl', choices=['per_task', 'vmap'], required=True)
    p.add_argument('--algo', choices=['maml', 'fomaml', 'protonet'], default='maml')
    p.add_argument('--iters', type=int, default=20, help='timed meta-iterations')
    p.add_argument('--threads', type=int, default=1)
    return p.parse_args()


ARGS = parse_args()
os.environ.setdefault('OMP_NUM_THREADS', str(ARGS.threads))
os.environ.setdefault('OPENBLAS_NUM_THREADS', str(ARGS.threads))
import torch  # noqa: E402  (after the thread variables)
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)

W = torch.load(ARGS.data)
NAMES = list(W['names'])
INDEX = {n: i for i, n in enumerate(NAMES)}
LAYERS = sum(1 for n in NAMES if n.endswith('_norm1_weight'))
HEADS = int(W['heads'])
ADAPTED = [i for i, m in enumerate(W['inner_mask']) if m]  # what the inner loop adapts
FROZEN = [i for i, m in enumerate(W['inner_mask']) if not m]
STEPS, LR = int(W['inner_steps']), float(W['inner_lr'])
T = int(W['meta_batch'])


def erf_formula_gelu(x):
    return 0.5 * x * (1 + torch.erf(x * (1 / math.sqrt(2))))


# As metalearn: torch's fused GELU where no gradient through it is differentiated again
# (fomaml, protonet), the erf formula where one is (second-order MAML: LibTorch 1.13's fused
# GELU gave NaN meta-gradients at random there). The same function either way.
gelu = erf_formula_gelu if ARGS.algo == 'maml' else F.gelu


def written_out_layer_norm(x, shape, weight, bias, eps):
    centred = x - x.mean(-1, keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + eps) * weight + bias


# functorch 1.13's second-order gradient through F.layer_norm differs from autograd's by about
# 1e-4 relative (its decomposition of layer_norm's backward), while autograd's matches metalearn
# to 3e-7: the vmap peer's second-order MAML writes layer norm out so that its meta-gradient is
# the same one.
LAYER_NORM = written_out_layer_norm if ARGS.impl == 'vmap' and ARGS.algo == 'maml' else F.layer_norm


def encode(p, ids, mask):
    """p: every parameter in metalearn's layout; ids, mask: [n, L] -> pooled [n, d]."""
    P = lambda name: p[INDEX[name]]  # noqa: E731
    L = ids.shape[-1]
    d = P('token_embedding').shape[1]
    dh = d // HEADS
    x = F.embedding(ids, P('token_embedding')) + P('position_embedding')[:L]
    # -1e9 added on padded keys by the baddbmm that computes the scores, as metalearn does.
    key_bias = ((~mask).to(x.dtype) * -1e9)[..., None, None, :].expand(
        *mask.shape[:-1], HEADS, 1, L).reshape(-1, 1, L)  # [n h, 1, L]

    def heads(t):  # [n, L, d] -> [n, h, L, dh]
        return t.reshape(*t.shape[:-1], HEADS, dh).transpose(-2, -3)

    for l in range(LAYERS):
        q = f'layer_{l}_'
        h = LAYER_NORM(x, (d,), P(q + 'norm1_weight'), P(q + 'norm1_bias'), 1e-5)
        qh, kh, vh = F.linear(h, P(q + 'attention_in_weight'),
                              P(q + 'attention_in_bias')).chunk(3, -1)
        fold = lambda t: heads(t).reshape(-1, L, dh)  # noqa: E731  [n h, L, dh]
        scores = torch.baddbmm(key_bias, fold(qh), fold(kh).transpose(-1, -2),
                               alpha=1 / math.sqrt(dh))
        context = torch.bmm(torch.softmax(scores, -1), fold(vh))
        context = context.reshape(*x.shape[:-2], HEADS, L, dh).transpose(-2, -3).reshape(x.shape)
        x = x + F.linear(context, P(q + 'attention_out_weight'), P(q + 'attention_out_bias'))
        h = LAYER_NORM(x, (d,), P(q + 'norm2_weight'), P(q + 'norm2_bias'), 1e-5)
        h = gelu(F.linear(h, P(q + 'ff1_weight'), P(q + 'ff1_bias')))
        x = x + F.linear(h, P(q + 'ff2_weight'), P(q + 'ff2_bias'))
    x = LAYER_NORM(x, (d,), P('final_norm_weight'), P('final_norm_bias'), 1e-5)
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(-2) / w.sum(-2).clamp_min(1.0)


def logits(p, ids, mask):
    return F.linear(encode(p, ids, mask), p[INDEX['head_weight']], p[INDEX['head_bias']])


def join(adapted, frozen):
    """The full layout from the adapted parameters and the rest."""
    p = [None] * len(NAMES)
    for i, t in zip(ADAPTED, adapted):
        p[i] = t
    for i, t in zip(FROZEN, frozen):
        p[i] = t
    return p


def task_loss(adapted, frozen, ids, mask, y):
    return F.cross_entropy(logits(join(adapted, frozen), ids, mask), y)


def proto_loss(p, s_ids, s_mask, s_y, q_ids, q_mask, q_y):
    zs, zq = encode(p, s_ids, s_mask), encode(p, q_ids, q_mask)
    ways = p[INDEX['head_weight']].shape[0]
    onehot = F.one_hot(s_y, ways).to(zs.dtype)
    prototypes = onehot.t().matmul(zs) / onehot.sum(0).clamp_min(1).unsqueeze(1)
    return F.cross_entropy(-(zq.unsqueeze(1) - prototypes.unsqueeze(0)).pow(2).sum(-1), q_y)


# ---------------------------------------------------------------------------------------------
# per_task: one task at a time
# ---------------------------------------------------------------------------------------------
def per_task_meta_gradient(params, batch, algo):
    """Adds the meta-gradient of the meta-batch to p.grad for every parameter."""
    frozen = [params[i] for i in FROZEN]
    for b in range(T):
        s_ids, s_mask, s_y, q_ids, q_mask, q_y = (t[b] for t in batch)
        if algo == 'protonet':
            (proto_loss(params, s_ids, s_mask, s_y, q_ids, q_mask, q_y) / T).backward()
            continue
        first_order = algo == 'fomaml'
        fast = [params[i] for i in ADAPTED]
        if first_order:
            fast = [f.detach().requires_grad_() for f in fast]
        for _ in range(STEPS):
            g = torch.autograd.grad(task_loss(fast, frozen, s_ids, s_mask, s_y), fast,
                                    create_graph=not first_order)
            fast = [f - LR * t for f, t in zip(fast, g)]
        if first_order:
            fast = [f.detach().requires_grad_() for f in fast]
        (task_loss(fast, frozen, q_ids, q_mask, q_y) / T).backward()
        if first_order:
            for i, f in zip(ADAPTED, fast):
                params[i].grad = f.grad if params[i].grad is None else params[i].grad + f.grad


# ---------------------------------------------------------------------------------------------
# vmap: functorch transforms over the meta-batch
# ---------------------------------------------------------------------------------------------
def vmap_meta_gradient(params, batch, algo):
    from functorch import grad, vmap

    s_ids, s_mask, s_y, q_ids, q_mask, q_y = batch
    if algo == 'protonet':
        def mean_loss(ps):
            return vmap(proto_loss, in_dims=(None, 0, 0, 0, 0, 0, 0))(ps, *batch).mean()
        grads = grad(mean_loss)(tuple(p.detach() for p in params))
        for p, t in zip(params, grads):
            p.grad = t
        return

    def adapt(adapted, frozen, ids, mask, y, first_order):
        for _ in range(STEPS):
            g = grad(task_loss)(adapted, frozen, ids, mask, y)
            if first_order:
                g = [t.detach() for t in g]
            adapted = [f - LR * t for f, t in zip(adapted, g)]
        return adapted

    adapted = tuple(params[i].detach() for i in ADAPTED)
    frozen = tuple(params[i].detach() for i in FROZEN)
    if algo == 'maml':
        def query_loss(adapted, frozen, s_ids, s_mask, s_y, q_ids, q_mask, q_y):
            fast = adapt(list(adapted), frozen, s_ids, s_mask, s_y, False)
            return task_loss(fast, frozen, q_ids, q_mask, q_y)

        def mean_loss(adapted, frozen):
            return vmap(query_loss, in_dims=(None, None, 0, 0, 0, 0, 0, 0))(
                adapted, frozen, *batch).mean()
        ga, gf = grad(mean_loss, argnums=(0, 1))(adapted, frozen)
    else:
        # First order: the adapted weights per task, then the query loss's gradient there with
        # respect to them and to the shared rest, averaged over tasks.
        fast = vmap(lambda i, m, y: adapt(list(adapted), frozen, i, m, y, True))(s_ids, s_mask, s_y)

        def mean_loss(fast, frozen):
            return vmap(task_loss, in_dims=(0, None, 0, 0, 0))(fast, frozen, q_ids, q_mask,
                                                                q_y).mean()
        ga, gf = grad(mean_loss, argnums=(0, 1))(tuple(fast), frozen)
        ga = [t.sum(0) for t in ga]  # per task, each already divided by T
    for i, t in zip(ADAPTED, ga):
        params[i].grad = t
    for i, t in zip(FROZEN, gf):
        params[i].grad = t


def main():
    args = ARGS
    params = [t.clone().requires_grad_() for t in W['params']]
    sides = [W[k] for k in ('support_ids', 'support_mask', 'support_target', 'query_ids',
                            'query_mask', 'query_target')]
    pool = sides[0].shape[0]
    step = per_task_meta_gradient if args.impl == 'per_task' else vmap_meta_gradient

    def batch(it):  # metalearn_bench_meta's order: the pool's tasks in turn
        rows = torch.tensor([(it * T + j) % pool for j in range(T)])
        return [t[rows] for t in sides]

    expected = list(W['grads'][args.algo])
    step(params, batch(0), args.algo)
    scale = max(e.abs().max().item() for e in expected)
    diff = max(((p.grad if p.grad is not None else torch.zeros_like(p)) - e).abs().max().item()
               for p, e in zip(params, expected)) / scale
    if not diff <= 1e-4:
        print(f'w3_transformer: {args.impl} {args.algo}: the meta-gradient differs from '
              f'metalearn\'s by {diff:.3g} (relative); not timed', file=sys.stderr)
        sys.exit(1)

    opt = torch.optim.Adam(params, lr=float(W['outer_lr']))
    for it in range(-2, args.iters):  # two warm-up iterations
        if it == 0:
            start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        step(params, batch(it + 2), args.algo)
        opt.step()
    seconds = time.perf_counter() - start
    print(json.dumps({'impl': args.impl, 'algo': args.algo, 'iters': args.iters,
                      'meta_iters_per_sec': round(args.iters / seconds, 3),
                      'max_rel_grad_diff': diff, 'threads': args.threads,
                      'malloc': os.environ.get('GLIBC_TUNABLES', 'default')}))


if __name__ == '__main__':
    main()
