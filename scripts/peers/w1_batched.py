#!/usr/bin/env python3
"""The strongest Python peers of workload W1: tasks batched by hand, and functorch's vmap.

W1 is ../shared/peer/maml_peer.py's workload (MLP 32-128-64-1, meta-batch 16, support 10,
query 40, 5 inner SGD steps at lr 0.3, Adam 1e-3; its task family and pre-sampled episodes,
imported from that file). maml_peer.py adapts one task at a time, as most Python code does; a
careful user batches the tasks instead, which is what metalearn itself does:

  --impl bmm   the meta-batch's fast weights stacked as (B, out, in) tensors, one baddbmm per
               layer for all tasks, one torch.autograd.grad per inner step (create_graph for
               second-order MAML) - metalearn's own structure, written in Python.
  --impl vmap  functorch.vmap over tasks of a per-task inner loop written with functorch.grad
               (the composable-transforms way, Debian's python3-torch ships functorch).

Before timing, the first meta-iteration's meta-gradient is computed by maml_peer.py's per-task
loop and by the implementation; they must agree (max |difference| <= 1e-5 relative to the
largest gradient entry) or the script exits 1 without a timing. Prints one JSON line:
{"impl", "algo", "meta_iters_per_sec", "iters", "max_rel_grad_diff", "threads", "malloc"}.

  /usr/bin/python3 scripts/peers/w1_batched.py --impl bmm --algo maml --threads 1
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:... (as scripts/bench.sh sets it)

Algorithms: maml (second order), fomaml, reptile (as maml_peer.py defines each).
"""
import argparse
import importlib.util
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.normpath(os.path.join(HERE, '..', '..', '..', 'shared', 'peer', 'maml_peer.py'))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--impl', choices=['bmm', 'vmap'], required=True)
    p.add_argument('--algo', choices=['maml', 'fomaml', 'reptile'], default='maml')
    p.add_argument('--iters', type=int, default=300, help='timed meta-iterations')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--peer', default=PEER, help='path of maml_peer.py (task family, episodes)')
    return p.parse_args()


ARGS = parse_args()
os.environ.setdefault('OMP_NUM_THREADS', str(ARGS.threads))
os.environ.setdefault('OPENBLAS_NUM_THREADS', str(ARGS.threads))


def load_peer(path, iters, threads):
    """maml_peer.py as a module; it parses sys.argv when imported, so it gets its own."""
    saved = sys.argv
    sys.argv = [path, '--iters', str(iters), '--threads', str(threads)]
    try:
        spec = importlib.util.spec_from_file_location('maml_peer', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.argv = saved
    return module


peer = load_peer(ARGS.peer, ARGS.iters, ARGS.threads)
import torch  # noqa: E402  (after the thread variables)
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)


# ---------------------------------------------------------------------------------------------
# bmm: stacked fast weights
# ---------------------------------------------------------------------------------------------
def stacked_forward(fast, x):
    """fast: [(B,out,in), (B,out)] x 3; x: (B,n,32) -> logits (B,n)."""
    w1, b1, w2, b2, w3, b3 = fast
    h = torch.relu(torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2)))
    h = torch.relu(torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2)))
    return torch.baddbmm(b3.unsqueeze(1), h, w3.transpose(1, 2)).squeeze(-1)


def stacked_loss(fast, x, y):
    """Sum over tasks of each task's mean BCE: its gradient w.r.t. task b's weights is task b's."""
    per_row = F.binary_cross_entropy_with_logits(stacked_forward(fast, x), y, reduction='none')
    return per_row.mean(1).sum()


def bmm_adapt(params, xs, ys, steps, lr, create_graph):
    B = xs.shape[0]
    fast = [p.unsqueeze(0).expand(B, *p.shape) for p in params]
    for _ in range(steps):
        grads = torch.autograd.grad(stacked_loss(fast, xs, ys), fast, create_graph=create_graph)
        fast = [f - lr * g for f, g in zip(fast, grads)]
    return fast


def bmm_meta_gradient(params, xs, ys, xq, yq, algo):
    """Sets p.grad for every parameter; returns the mean query loss."""
    B = xs.shape[0]
    steps, lr = peer.ARGS.inner_steps, peer.ARGS.inner_lr
    if algo in ('maml', 'fomaml'):
        if algo == 'maml':
            fast = bmm_adapt(params, xs, ys, steps, lr, create_graph=True)
        else:
            # First order: the adapted weights as leaves; their query gradient, summed over
            # tasks, is the meta-gradient.
            start = [p.detach().requires_grad_() for p in params]
            adapted = bmm_adapt(start, xs, ys, steps, lr, False)
            fast = [a.detach().requires_grad_() for a in adapted]
        qloss = stacked_loss(fast, xq, yq) / B
        if algo == 'maml':
            grads = torch.autograd.grad(qloss, params)
        else:
            grads = [g.sum(0) for g in torch.autograd.grad(qloss, fast)]
        for p, g in zip(params, grads):
            p.grad = g
        return qloss.item()
    # reptile: successive size-K minibatches of the task's K+Q examples (maml_peer.py's rule)
    xa, ya = torch.cat([xs, xq], 1), torch.cat([ys, yq], 1)
    K, n = xs.shape[1], xa.shape[1]
    with torch.no_grad():
        fast = [p.detach().unsqueeze(0).repeat(B, *([1] * p.dim())) for p in params]
    for s in range(steps):
        lo = (s * K) % n
        fast = [f.requires_grad_() for f in fast]
        grads = torch.autograd.grad(stacked_loss(fast, xa[:, lo:lo + K], ya[:, lo:lo + K]), fast)
        with torch.no_grad():
            fast = [f - lr * g for f, g in zip(fast, grads)]
    with torch.no_grad():
        qloss = stacked_loss(fast, xq, yq).item() / B
        for p, f in zip(params, fast):
            p.grad = (p.unsqueeze(0) - f).mean(0)
    return qloss


# ---------------------------------------------------------------------------------------------
# vmap: functorch transforms
# ---------------------------------------------------------------------------------------------
def vmap_meta_gradient_fn():
    from functorch import grad, vmap

    steps, lr = peer.ARGS.inner_steps, peer.ARGS.inner_lr

    def task_loss(fast, x, y):
        return F.binary_cross_entropy_with_logits(peer.fwd(fast, x), y)

    def adapt(fast, xs, ys, first_order):
        for _ in range(steps):
            g = grad(task_loss)(fast, xs, ys)
            if first_order:
                g = [t.detach() for t in g]
            fast = [f - lr * t for f, t in zip(fast, g)]
        return fast

    def query_loss(params, xs, ys, xq, yq, first_order):
        return task_loss(adapt(list(params), xs, ys, first_order), xq, yq)

    def meta_gradient(params, xs, ys, xq, yq, algo):
        B = xs.shape[0]
        if algo in ('maml', 'fomaml'):
            first_order = algo == 'fomaml'
            if first_order:
                # d query_loss(adapted) / d adapted, per task, summed: the first-order gradient.
                adapted = vmap(lambda a, b: adapt([p.detach() for p in params], a, b, True))(xs, ys)
                g = vmap(grad(task_loss))(adapted, xq, yq)
                grads = [t.sum(0) / B for t in g]
                loss = vmap(task_loss)(adapted, xq, yq).mean().item()
            else:
                def mean_loss(ps):
                    return vmap(query_loss, in_dims=(None, 0, 0, 0, 0, None))(
                        ps, xs, ys, xq, yq, False).mean()
                grads = grad(mean_loss)(tuple(p.detach() for p in params))
                loss = float('nan')  # not recomputed: the loss is not what is timed
            for p, t in zip(params, grads):
                p.grad = t
            return loss
        xa, ya = torch.cat([xs, xq], 1), torch.cat([ys, yq], 1)
        K, n = xs.shape[1], xa.shape[1]

        def reptile_task(xa_b, ya_b):
            fast = [p.detach() for p in params]
            for s in range(steps):
                lo = (s * K) % n
                g = grad(task_loss)(fast, xa_b[lo:lo + K], ya_b[lo:lo + K])
                fast = [f - lr * t for f, t in zip(fast, g)]
            return fast

        fast = vmap(reptile_task)(xa, ya)
        with torch.no_grad():
            for p, f in zip(params, fast):
                p.grad = (p.unsqueeze(0) - f).mean(0)
        return float('nan')

    return meta_gradient


# ---------------------------------------------------------------------------------------------
# Check against the per-task reference, then time
# ---------------------------------------------------------------------------------------------
def reference_meta_gradient(params, xs, ys, xq, yq, algo):
    """maml_peer.py's per-task loop for one meta-iteration (its train(), one step, no Adam)."""
    B = xs.shape[0]
    steps, lr = peer.ARGS.inner_steps, peer.ARGS.inner_lr
    for p in params:
        p.grad = None
    if algo in ('maml', 'fomaml'):
        for b in range(B):
            fast = peer.inner_adapt(params, xs[b], ys[b], steps, lr, algo == 'maml')
            (peer.bce(peer.fwd(fast, xq[b]), yq[b]) / B).backward()
        return [p.grad.clone() for p in params]
    xa, ya = torch.cat([xs, xq], 1), torch.cat([ys, yq], 1)
    K, n = xs.shape[1], xa.shape[1]
    acc = [torch.zeros_like(p) for p in params]
    for b in range(B):
        fast = [p.detach().clone().requires_grad_() for p in params]
        for s in range(steps):
            lo = (s * K) % n
            g = torch.autograd.grad(peer.bce(peer.fwd(fast, xa[b, lo:lo + K]), ya[b, lo:lo + K]),
                                    fast)
            with torch.no_grad():
                for f, t in zip(fast, g):
                    f.sub_(lr * t)
        with torch.no_grad():
            for a, p, f in zip(acc, params, fast):
                a.add_(p.detach() - f)
    return [a / B for a in acc]


def main():
    args = ARGS
    X, Y = peer.make_task_family(peer.ARGS)
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    tids, sidx, qidx = peer.make_episodes(peer.ARGS, Y.numpy())
    module = peer.make_module(peer.ARGS.seed)
    params = list(module.parameters())
    step = bmm_meta_gradient if args.impl == 'bmm' else vmap_meta_gradient_fn()

    def batch(it):
        t = tids[it]
        return (X[t[:, None], sidx[it]], Y[t[:, None], sidx[it]],
                X[t[:, None], qidx[it]], Y[t[:, None], qidx[it]])

    expected = reference_meta_gradient(params, *batch(0), args.algo)
    for p in params:
        p.grad = None
    step(params, *batch(0), args.algo)
    scale = max(e.abs().max().item() for e in expected)
    diff = max((p.grad - e).abs().max().item() for p, e in zip(params, expected)) / scale
    if not diff <= 1e-5:
        print(f'w1_batched: {args.impl} {args.algo}: the meta-gradient differs from the per-task '
              f'reference by {diff:.3g} (relative); not timed', file=sys.stderr)
        sys.exit(1)

    opt = torch.optim.Adam(params, lr=peer.ARGS.outer_lr)
    start = time.perf_counter()
    for it in range(args.iters):
        opt.zero_grad(set_to_none=True)
        step(params, *batch(it), args.algo)
        opt.step()
    seconds = time.perf_counter() - start
    print(json.dumps({'impl': args.impl, 'algo': args.algo, 'iters': args.iters,
                      'meta_iters_per_sec': round(args.iters / seconds, 2),
                      'max_rel_grad_diff': diff, 'threads': args.threads,
                      'malloc': os.environ.get('GLIBC_TUNABLES', 'default')}))


if __name__ == '__main__':
    main()
