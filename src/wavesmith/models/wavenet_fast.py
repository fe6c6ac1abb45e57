"""Fast WaveNet generation: the cached queue algorithm (Paine et al., 2016, "Fast Wavenet").

A full forward pass recomputes the whole receptive field for every new sample. Here each
dilated layer instead keeps a queue (a ring buffer) of what its past inputs will
contribute to its future outputs, so one new sample costs one pass down the stack: a few
matrix-vector products per layer, whatever the dilation, batched across streams, for any
length. The result equals the full forward pass over the generated sequence (a test pins
it to 1e-4 in float32).

Generation is one small step per sample, so per-call framework overhead, not arithmetic,
bounds the speed (4 M multiply-adds per sample for the reference model take ~0.1 ms; 300
framework calls take longer). The per-sample loop therefore runs in numpy (about 1 us per
call against several for torch eager) on preallocated buffers (``out=`` everywhere), with
the weights folded once so that each layer makes nine calls:

- every tap of the dilated convolution in ONE product ``x_t @ [W_0 | W_1 | W_2]``: the
  current tap is used now, the past taps are pushed into the layer's queue, at the slots
  of the future outputs they feed (``t + d``, ``t + 2d``);
- sigmoid(u) = (1 + tanh(u / 2)) / 2, so one tanh covers filter and gate (the 1/2 on the
  gate rows and the final 1/2 are folded into the weights);
- the skip 1x1 convolutions of all layers in ONE product at the end: the gated outputs of
  every layer sit side by side in one buffer ``Z`` and ``skip = Z @ W_skip_all``;
- biases and label embeddings enter the queue slot when it is first written; the
  residual bias rides on a constant 1 column next to each layer's gated output;
- the softmax temperature is folded into the last layer; sampling adds pre-drawn Gumbel
  noise and takes the argmax (no softmax, no multinomial).

On a CUDA device the same algorithm runs in torch (see :func:`_generate_torch`).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import time

import numpy as np
import torch

_CHUNK = 256  # samples of pre-drawn noise at a time
_COND = 32  # samples of precomputed mel conditioning at a time (n * layers * gate floats each)


class QueuedLayer:
    """One residual layer for generation: folded weights and its own queue of the future.

    ``queue[s]`` holds the sum of what past inputs contribute to the gate pre-activation
    of the output at time ``s`` (modulo the queue length ``(k - 1) d + 1``).
    """

    def __init__(self, layer, n: int, base: np.ndarray, z: np.ndarray, zi: slice):
        w = layer.dilated.weight.detach().double().cpu().numpy()  # (G, R, k)
        g, _, k = w.shape
        half = np.ones(g)
        half[g // 2 :] = 0.5  # sigmoid(u) = (1 + tanh(u/2)) / 2
        self.k, self.d, self.g = k, layer.dilation, g
        self.w_taps = _f32(np.concatenate([(w[:, :, j] * half[:, None]).T for j in range(k)], axis=1))
        self.base = _f32(base * half)  # (n, G): bias (+ label embedding) for each stream
        r = layer.res.weight.detach().double().cpu().numpy()[:, :, 0]  # (R, G/2)
        self.w_res = _f32(np.concatenate([0.5 * r.T, layer.res.bias.detach().double().cpu().numpy()[None]]))
        self.size = (k - 1) * self.d + 1
        self.queue = np.empty((self.size, n, g), np.float32)
        self.queue[:] = self.base  # inputs before the start are zero padding: bias only
        # Views made once: slicing costs about as much as a small numpy call.
        h = g // 2
        self.slots = list(self.queue)
        self.filt, self.gate = [s[:, :h] for s in self.slots], [s[:, h:] for s in self.slots]
        self.y = np.empty((n, k * g), np.float32)
        self.y_taps = [self.y[:, j * g : (j + 1) * g] for j in range(k)]
        self.mid = [(self.y_taps[j], (k - 1 - j) * self.d) for j in range(1, k - 1)]
        self.z = z[:, zi]  # this layer's gated output (and its constant-1 column) inside Z
        self.z_out = self.z[:, :h]
        self.res = np.empty((n, r.shape[0]), np.float32)

    def step(self, x: np.ndarray, t: int, cond: np.ndarray | None) -> None:
        """Advance one sample: read ``x`` (n, R), write the gated output, update ``x`` in place."""
        size, slots = self.size, self.slots
        np.matmul(x, self.w_taps, out=self.y)
        np.add(self.y_taps[0], self.base, out=slots[(t - 1) % size])  # oldest tap opens slot t+(k-1)d
        for y, ahead in self.mid:
            s = slots[(t + ahead) % size]
            np.add(s, y, out=s)
        i = t % size
        now = slots[i]
        np.add(now, self.y_taps[-1], out=now)
        if cond is not None:
            np.add(now, cond, out=now)
        np.tanh(now, out=now)
        gate = self.gate[i]
        np.add(gate, 1.0, out=gate)
        np.multiply(self.filt[i], gate, out=self.z_out)
        np.matmul(self.z, self.w_res, out=self.res)
        np.add(x, self.res, out=x)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


class Generator:
    """The whole network, folded for one-sample-at-a-time generation of ``n`` streams."""

    def __init__(self, model, n: int, h: torch.Tensor | None, temperature: float = 1.0):
        c = model.config
        self.n, self.mulaw, self.mixtures = n, c.output == "mulaw", c.mixtures
        gh = c.gate_channels // 2
        self.z = np.zeros((n, len(model.layers) * (gh + 1)), np.float32)
        self.z[:, gh :: gh + 1] = 1.0  # the constant column after each layer's gated output
        self.global_h = h is not None and h.shape[-1] == 1
        self.mel_h = None if h is None or self.global_h else h  # (n, cond, T), projected per chunk
        self.layers = []
        for i, layer in enumerate(model.layers):
            base = np.broadcast_to(_np(layer.dilated.bias), (n, c.gate_channels))
            if self.global_h:
                base = base + _np(h[:, :, 0]) @ _np(layer.cond.weight[:, :, 0]).T
            self.layers.append(QueuedLayer(layer, n, base, self.z, slice(i * (gh + 1), (i + 1) * (gh + 1))))
        if self.mel_h is not None:  # all layers' conditioning projections, stacked (gate rows halved)
            w = np.concatenate([_np(layer.cond.weight[:, :, 0]) for layer in model.layers])
            w[np.tile(np.arange(c.gate_channels) >= gh, len(model.layers))] *= 0.5
            self.w_cond = _f32(w.T)
        skip = np.zeros((len(model.layers), gh + 1, c.skip_channels))
        for i, layer in enumerate(model.layers):
            skip[i, :gh] = 0.5 * _np(layer.skip.weight[:, :, 0]).T
            skip[i, gh] = _np(layer.skip.bias)  # each layer's bias on its constant-1 row
        self.w_skip = _f32(skip.reshape(-1, c.skip_channels))
        conv1, conv2 = model.head[1], model.head[3]
        self.w1, self.b1 = _f32(_np(conv1.weight[:, :, 0]).T), _f32(_np(conv1.bias))
        scale = 1.0 / temperature if self.mulaw and temperature > 0 else 1.0  # softmax(logits / T)
        self.w2, self.b2 = _f32(_np(conv2.weight[:, :, 0]).T * scale), _f32(_np(conv2.bias) * scale)
        self.temperature = temperature
        emb = _np(model.embed)
        self.embed_bias = _f32(_np(model.embed_bias))
        if self.mulaw:
            emb[-1] += self.embed_bias  # the bias rides on every row of the current tap's table
        self.embed = [_f32(e) for e in emb]
        self.pad = float(c.quantization_channels) if self.mulaw else 0.0
        self.start = c.quantization_channels // 2 if self.mulaw else 0.0
        self.x = np.empty((n, c.residual_channels), np.float32)
        self.skip = np.empty((n, c.skip_channels), np.float32)
        self.hidden = np.empty((n, c.skip_channels), np.float32)
        self.out = np.empty((n, self.w2.shape[1]), np.float32)

    def _input(self, history: list[np.ndarray]) -> None:
        """The causal input convolution over the last ``input_kernel`` inputs, into ``x``."""
        x = self.x
        for j, (e, v) in enumerate(zip(self.embed, history, strict=True)):
            if self.mulaw:
                part = e[v.astype(np.intp)]
            else:
                part = v[:, None] * e[0]
            if j == 0:
                x[:] = part
            else:
                np.add(x, part, out=x)
        if not self.mulaw:
            np.add(x, self.embed_bias, out=x)

    def _cond_chunk(self, start: int) -> np.ndarray | None:
        if self.mel_h is None:
            return None
        h = self.mel_h[:, :, start : start + _COND].permute(2, 0, 1).detach().cpu().float().numpy()
        return np.matmul(h, self.w_cond)  # (chunk, n, layers * G)

    def _head(self) -> np.ndarray:
        np.matmul(self.z, self.w_skip, out=self.skip)
        np.maximum(self.skip, 0.0, out=self.skip)
        np.matmul(self.skip, self.w1, out=self.hidden)
        np.add(self.hidden, self.b1, out=self.hidden)
        np.maximum(self.hidden, 0.0, out=self.hidden)
        np.matmul(self.hidden, self.w2, out=self.out)
        np.add(self.out, self.b2, out=self.out)
        return self.out

    def run(self, samples: int, primer: np.ndarray | None, seed: int, keep_outputs: bool = False,
            threads: tuple[int, ...] = ()):
        """Generate ``samples`` values per stream after listening to ``primer`` (n, P).

        ``threads``: BLAS thread counts to try on the first steps; the fastest is kept (on a
        shared machine a second thread can be 10x slower, spinning against other processes).
        Returns (values (n, samples), outputs (P + samples, n, out) if ``keep_outputs``).
        """
        rng = np.random.default_rng(seed)
        first = 0 if primer is None else primer.shape[1]
        total = first + samples
        kin = len(self.embed)
        history = [np.full(self.n, self.pad, np.float64) for _ in range(kin - 1)]
        history.append(np.full(self.n, self.start, np.float64))
        values = np.empty((self.n, samples), np.int64 if self.mulaw else np.float64)
        outputs = [] if keep_outputs else None
        g = self.layers[0].g if self.layers else 0
        noise = cond = None
        trial = _ThreadTrial(threads if total >= 16 * _TRIAL else ())
        for t in range(total):
            trial.tick(t)
            if t % _COND == 0:
                cond = self._cond_chunk(t)
            if t % _CHUNK == 0 and t + _CHUNK > first:
                noise = self._noise(rng)
            self._input(history)
            if cond is None:
                for layer in self.layers:
                    layer.step(self.x, t, None)
            else:
                for i, layer in enumerate(self.layers):
                    layer.step(self.x, t, cond[t % _COND, :, i * g : (i + 1) * g])
            if t < first and not keep_outputs:
                v = primer[:, t]  # listening to the prompt: the head is not needed
            else:
                out = self._head()
                if keep_outputs:
                    outputs.append(out.copy())
                v = primer[:, t] if t < first else self._draw(out, noise, t % _CHUNK)
                if t >= first:
                    values[:, t - first] = v
            history = history[1:] + [np.asarray(v, np.float64)]
        return values, (np.stack(outputs) if keep_outputs else None)

    def _noise(self, rng: np.random.Generator) -> np.ndarray:
        width = self.out.shape[1] if self.mulaw else self.mixtures + 1
        u = rng.random((_CHUNK, self.n, width), dtype=np.float32)
        np.clip(u, 1e-7, 1 - 1e-7, out=u)
        if self.mulaw:
            return -np.log(-np.log(u))  # Gumbel: argmax(logits + G) samples softmax(logits)
        return u

    def _draw(self, out: np.ndarray, noise: np.ndarray, i: int) -> np.ndarray:
        if self.mulaw:
            if self.temperature > 0:
                np.add(out, noise[i], out=out)
            return out.argmax(axis=1)
        m = self.mixtures
        u = noise[i]
        k = (out[:, :m] - np.log(-np.log(u[:, :m])) if self.temperature > 0 else out[:, :m]).argmax(axis=1)
        rows = np.arange(self.n)
        mu, log_s = out[rows, m + k].astype(np.float64), out[rows, 2 * m + k].astype(np.float64)
        e = np.log(u[:, m]) - np.log1p(-u[:, m])  # a standard logistic draw
        v = np.clip(mu + np.exp(log_s) * self.temperature * e, -1.0, 1.0)
        half = (2**16 - 1) / 2
        return np.round((v + 1) * half) / half - 1  # the 16-bit value the network will hear


_TRIAL = 48  # steps timed per candidate thread count


class _ThreadTrial:
    """Times ``_TRIAL`` steps with each candidate BLAS thread count, then keeps the fastest."""

    def __init__(self, candidates: tuple[int, ...]):
        self.candidates, self.times = list(candidates), []
        if self.candidates:
            set_blas_threads(self.candidates[0])

    def tick(self, t: int) -> None:
        if not self.candidates or t % _TRIAL or t > _TRIAL * len(self.candidates):
            return
        now = time.perf_counter()
        if t:
            self.times.append(now - self.start)
        self.start = now
        if len(self.times) < len(self.candidates):
            set_blas_threads(self.candidates[len(self.times)])
        else:
            set_blas_threads(self.candidates[int(np.argmin(self.times))])


def set_blas_threads(n: int) -> int | None:
    """Set numpy's OpenBLAS thread count (returns the previous one, None if unavailable).

    One thread is fastest for one stream (products too small to split); more help batches.
    """
    lib = _openblas()
    if lib is None:
        return None
    old = lib.scipy_openblas_get_num_threads64_()
    lib.scipy_openblas_set_num_threads64_(int(n))
    return int(old)


_LIB: list = []


def _openblas():
    if not _LIB:
        lib = None
        pattern = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs", "libscipy_openblas*")
        for path in glob.glob(pattern):
            try:
                cand = ctypes.CDLL(path)
                cand.scipy_openblas_get_num_threads64_  # noqa: B018 - probe the symbol
                lib = cand
            except (OSError, AttributeError):
                continue
        _LIB.append(lib)
    return _LIB[0]


class TorchGenerator:
    """The same algorithm in torch, for CUDA: every step is one static graph.

    All state lives on the device and the step reads the time from a device tensor, so
    one step can be captured as a CUDA graph and replayed once per sample (a few
    microseconds of launch instead of ~300 kernel launches). On a CPU it runs eagerly
    (slowly; the numpy :class:`Generator` is the CPU path) so tests can check it there.
    Folded weights come from the numpy generator, so both share one folding.
    """

    def __init__(self, model, n: int, h: torch.Tensor | None, temperature: float = 1.0, graph: bool | None = None):
        """``graph``: capture the step as a CUDA graph (default: on CUDA devices).

        Off CUDA, ``graph=True`` runs the capture's warm-up and in-place reset and then steps
        eagerly, so a CPU test covers everything of that path but the capture itself.
        """
        self.graph = graph
        self.flow = ""  # set by run: "graph" (captured, replayed), "graph-eager" (that flow off CUDA), "eager"
        self.ref = ref = Generator(model, n, h, temperature)
        dev = model.device
        self.dev, self.n, self.mulaw, self.temperature = dev, n, ref.mulaw, temperature

        def T(a):
            return torch.as_tensor(np.ascontiguousarray(a), device=dev)

        self.layers = [dict(w=T(q.w_taps), base=T(q.base), w_res=T(q.w_res[:-1]), b_res=T(q.w_res[-1]), k=q.k,
                            d=q.d, size=q.size, g=q.g) for q in ref.layers]
        self.w_skip, self.w1, self.b1, self.w2, self.b2 = (T(a) for a in (ref.w_skip, ref.w1, ref.b1, ref.w2, ref.b2))
        self.embed, self.embed_bias = [T(e) for e in ref.embed], T(ref.embed_bias)
        self.w_cond = T(ref.w_cond) if ref.mel_h is not None else None
        self.gh = ref.layers[0].g // 2 if ref.layers else 0

    def _reset(self, total: int, primer: np.ndarray | None, keep: bool) -> None:
        dev, n = self.dev, self.n
        self.t = torch.zeros((), dtype=torch.long, device=dev)
        for q in self.layers:
            q["queue"] = q["base"].expand(q["size"], n, q["g"]).clone()
        kin = len(self.embed)
        self.hist = torch.full((n, kin), self.ref.pad, dtype=torch.float32, device=dev)
        self.hist[:, -1] = self.ref.start
        self.first = torch.tensor(0 if primer is None else primer.shape[1], device=dev)
        self.primer = torch.zeros(n, total, dtype=torch.float32, device=dev)
        if primer is not None:
            self.primer[:, : primer.shape[1]] = torch.as_tensor(primer, dtype=torch.float32)
        self.values = torch.zeros(n, total, dtype=torch.float32, device=dev)
        width = self.ref.out.shape[1] if self.mulaw else self.ref.mixtures + 1
        self.noise = torch.zeros(_CHUNK, n, width, device=dev)
        width = len(self.layers) * self.layers[0]["g"]
        self.cond = torch.zeros(_COND, n, width, device=dev) if self.w_cond is not None else None
        self.outputs = torch.zeros(total, n, self.ref.out.shape[1], device=dev) if keep else None

    def _step(self) -> None:
        t, n, gh = self.t, self.n, self.gh
        tokens = self.hist.long() if self.mulaw else None
        x = 0 if self.mulaw else self.embed_bias
        for j, e in enumerate(self.embed):  # the causal input convolution
            x = x + (e.index_select(0, tokens[:, j]) if self.mulaw else self.hist[:, j : j + 1] * e[0])
        zs = []
        i_chunk = (t % _CHUNK).reshape(1)
        cond = None if self.cond is None else self.cond.index_select(0, (t % _COND).reshape(1))[0]
        for i, q in enumerate(self.layers):
            g, k, size, queue = q["g"], q["k"], q["size"], q["queue"]
            y = x @ q["w"]
            queue.index_copy_(0, ((t - 1) % size).reshape(1), (y[:, :g] + q["base"])[None])
            for j in range(1, k - 1):
                slot = ((t + (k - 1 - j) * q["d"]) % size).reshape(1)  # (index_add_ is not deterministic on CUDA)
                queue.index_copy_(0, slot, queue.index_select(0, slot) + y[None, :, j * g : (j + 1) * g])
            now = queue.index_select(0, (t % size).reshape(1))[0] + y[:, (k - 1) * g :]
            if cond is not None:
                now = now + cond[:, i * g : (i + 1) * g]
            a = torch.tanh(now)
            z = a[:, :gh] * (1.0 + a[:, gh:])
            zs.append(torch.cat([z, torch.ones(n, 1, device=self.dev)], 1))
            x = x + z @ q["w_res"] + q["b_res"]
        skip = torch.relu(torch.cat(zs, 1) @ self.w_skip)
        out = torch.relu(skip @ self.w1 + self.b1) @ self.w2 + self.b2
        if self.outputs is not None:
            self.outputs.index_copy_(0, t.reshape(1), out[None])
        noise = self.noise.index_select(0, i_chunk)[0]
        if self.mulaw:
            drawn = (out + noise if self.temperature > 0 else out).argmax(1).float()
        else:
            m = self.ref.mixtures
            logit = out[:, :m] - torch.log(-torch.log(noise[:, :m])) if self.temperature > 0 else out[:, :m]
            comp = logit.argmax(1, keepdim=True)
            mu, log_s = out[:, m:].gather(1, comp)[:, 0], out[:, 2 * m :].gather(1, comp)[:, 0]
            u = noise[:, m]
            v = (mu + torch.exp(log_s) * self.temperature * (torch.log(u) - torch.log1p(-u))).clamp(-1, 1)
            half = (2**16 - 1) / 2
            drawn = torch.round((v + 1) * half) / half - 1
        v = torch.where(t < self.first, self.primer.index_select(1, t.reshape(1))[:, 0], drawn)
        self.values.index_copy_(1, t.reshape(1), v[:, None])
        self.hist.copy_(torch.cat([self.hist[:, 1:], v[:, None]], 1))
        self.t.add_(1)

    def run(self, samples: int, primer: np.ndarray | None, seed: int, keep_outputs: bool = False):
        """As :meth:`Generator.run` (same noise stream, so the same values for the same seed)."""
        first = 0 if primer is None else primer.shape[1]
        total = first + samples
        rng = np.random.default_rng(seed)
        step = self._step
        if self.graph if self.graph is not None else self.dev.type == "cuda":
            step = self._capture(total, primer, keep_outputs)  # leaves the captured buffers reset
            self.flow = "graph" if self.dev.type == "cuda" else "graph-eager"
        else:
            self._reset(total, primer, keep_outputs)
            self.flow = "eager"
        for t in range(total):
            if t % _COND == 0 and self.cond is not None:
                chunk = self.ref._cond_chunk(t)
                self.cond[: len(chunk)].copy_(torch.as_tensor(chunk, device=self.dev))
            if t % _CHUNK == 0 and t + _CHUNK > first:
                self.noise.copy_(torch.as_tensor(self.ref._noise(rng), device=self.dev))
            step()
        values = self.values[:, first:].cpu().double().numpy()
        if self.mulaw:
            values = values.astype(np.int64)
        return values, (self.outputs.cpu().numpy() if keep_outputs else None)

    def _capture(self, total: int, primer: np.ndarray | None, keep: bool):
        """Warm up on a side stream, then capture one step as a CUDA graph (state reset after).

        Off CUDA (tests) the same warm-up and in-place reset run, and the step stays eager.
        """
        self._reset(total, primer, keep)
        cuda = self.dev.type == "cuda"
        side = torch.cuda.Stream() if cuda else None
        if cuda:
            side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side) if cuda else contextlib.nullcontext():
            for _ in range(3):
                self._step()
        if not cuda:
            self._reset_in_place()
            return self._step
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step()
        self._cuda_graph = graph  # keep it (and the memory pool its kernels use) alive
        self._reset_in_place()
        return graph.replay

    def _reset_in_place(self) -> None:
        """Reset the captured buffers without reallocating them (the graph holds their addresses)."""
        self.t.zero_()
        for q in self.layers:
            q["queue"].copy_(q["base"].expand_as(q["queue"]))
        self.hist.fill_(self.ref.pad)
        self.hist[:, -1] = self.ref.start
        self.values.zero_()
        if self.outputs is not None:
            self.outputs.zero_()


def generate(model, n: int, samples: int, h, primer: torch.Tensor | None, seed: int, temperature: float
             ) -> torch.Tensor:
    """Values (n, samples): mu-law classes (int64) or 16-bit values in [-1, 1] (float64)."""
    prim = None if primer is None else primer.detach().cpu().double().numpy()
    if model.device.type == "cuda":
        values, _ = TorchGenerator(model, n, h, temperature).run(samples, prim, seed)
        return torch.from_numpy(values)
    gen = Generator(model, n, h, temperature)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    old = set_blas_threads(1)
    try:  # one stream: products too small to split; a batch: let the machine decide
        values, _ = gen.run(samples, prim, seed, threads=(min(cores, 4), 1) if n >= 8 and cores > 1 else ())
    finally:
        if old is not None:
            set_blas_threads(old)
    return torch.from_numpy(values)
