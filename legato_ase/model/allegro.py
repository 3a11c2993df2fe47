"""The Allegro edge network: per-edge energies from edge vectors (REFERENCE §2).

Tensor features are laid out channel-first, ``[n_edges, n_tensor, irreps_dim]``. The
channel-wise tensor product is one matrix product: the per-channel outer product of the
features with the centre's environment, ``[E·F, D_in·D_sh]``, times a fixed coupling matrix
``[D_in·D_sh, K]``. That replaces the broadcast over ``E×F×S×S×K`` of other implementations
with a GEMM that is fast on CPU and GPU, forward and backward.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from ..config import ModelConfig
from .irreps import SCALAR, Irrep, cg_tensor, expand_index, layer_irreps, layer_paths, sh_irreps
from .radial import BesselBasis, polynomial_envelope


class MLP(torch.nn.Module):
    """Bias-free MLP with SiLU, so that a zero input gives a zero output."""

    def __init__(self, widths: list[int], act_on_output: bool) -> None:
        super().__init__()
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(a, b) / math.sqrt(a)) for a, b in zip(widths, widths[1:])
        )
        self.act_on_output = act_on_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for n, w in enumerate(self.weights):
            x = x @ w
            if n < last or self.act_on_output:
                x = torch.nn.functional.silu(x)
        return x


class _Layer(torch.nn.Module):
    """One Allegro layer: environment sum, channel-wise tensor product, latent update, mix."""

    def __init__(
        self, cfg: ModelConfig, irreps_in: list[Irrep], irreps_out: list[Irrep], last: bool
    ) -> None:
        super().__init__()
        sh = sh_irreps(cfg.l_max)
        f = cfg.n_tensor
        paths = layer_paths(irreps_in, sh, irreps_out)
        # Within one output irrep, order k as (path, m): the mix then contracts (u, path).
        cg = cg_tensor(irreps_in, sh, paths, torch.get_default_dtype())
        self.register_buffer("cg", cg.reshape(-1, cg.shape[-1]))
        self.blocks: list[tuple[int, int, int]] = []  # (l, n_paths, start) per output irrep
        start = 0
        for irrep in irreps_out:
            n = sum(p.irrep_out == irrep for p in paths)
            self.blocks.append((irrep[0], n, start))
            start += n * (2 * irrep[0] + 1)
        _, self.n_scalar_paths, self.scalar_start = self.blocks[irreps_out.index(SCALAR)]
        self.env_embed = torch.nn.Parameter(torch.randn(cfg.n_scalar, f * len(sh)) / math.sqrt(cfg.n_scalar))
        widths = [cfg.n_scalar + f * self.n_scalar_paths, *cfg.latent_mlp, cfg.n_scalar]
        self.latent_mlp = MLP(widths, act_on_output=True)
        self.alpha = torch.nn.Parameter(torch.tensor(cfg.resnet_alpha))
        self.last = last
        self.mix = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(n * f, f) / math.sqrt(n * f)) for _, n, _ in self.blocks
        ) if not last else torch.nn.ParameterList()

    def forward(
        self,
        features: torch.Tensor,
        latent: torch.Tensor,
        sh: torch.Tensor,
        sh_expand: torch.Tensor,
        envelope: torch.Tensor,
        centre: torch.Tensor,
        n_atoms: int,
        env_norm: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n_edges, f = features.shape[0], features.shape[1]
        weights = (latent @ self.env_embed).view(n_edges, f, -1)
        env_edge = weights[:, :, sh_expand] * sh.unsqueeze(1)
        env = torch.zeros(n_atoms, f, sh.shape[1], dtype=sh.dtype, device=sh.device)
        env = env.index_add_(0, centre, env_edge).mul_(env_norm)[centre]
        outer = (features.unsqueeze(-1) * env.unsqueeze(-2)).view(n_edges * f, -1)
        tp = (outer @ self.cg).view(n_edges, f, -1)
        s0 = self.scalar_start
        scalars = tp[:, :, s0 : s0 + self.n_scalar_paths].reshape(n_edges, -1)
        update = self.latent_mlp(torch.cat([latent, scalars], dim=-1)) * envelope.unsqueeze(-1)
        norm = torch.rsqrt(1.0 + self.alpha * self.alpha)
        latent = norm * latent + self.alpha * norm * update
        if self.last:
            return features, latent
        return self._mix(tp), latent

    def _mix(self, tp: torch.Tensor) -> torch.Tensor:
        n_edges, f = tp.shape[0], tp.shape[1]
        out = []
        for (l, n, start), w in zip(self.blocks, self.mix):
            dim = 2 * l + 1
            block = tp[:, :, start : start + n * dim]
            if l == 0:
                out.append((block.reshape(n_edges, f * n) @ w).unsqueeze(-1))
                continue
            block = block.reshape(n_edges, f * n, dim).transpose(1, 2)
            out.append((block @ w).transpose(1, 2))
        return torch.cat(out, dim=-1)


class Allegro(torch.nn.Module):
    """Per-edge energies E_ij from edge vectors and the species of both ends."""

    def __init__(self, cfg: ModelConfig, n_species: int, pair_cutoffs: torch.Tensor) -> None:
        super().__init__()
        self.l_max, self.cutoff_p, self.n_species = cfg.l_max, cfg.cutoff_p, n_species
        self.n_tensor = cfg.n_tensor
        self.env_norm = 1.0 / math.sqrt(cfg.avg_num_neighbors)
        sh = sh_irreps(cfg.l_max)
        irreps = layer_irreps(cfg.l_max, cfg.n_layers, cfg.parity)
        self.register_buffer("sh_expand", expand_index(sh))
        self.register_buffer("pair_cutoffs", pair_cutoffs)  # [T, T] in Å
        self.bessel = BesselBasis(cfg.num_bessel, cfg.trainable_bessel)
        self.two_body = MLP(
            [2 * n_species + cfg.num_bessel, *cfg.two_body_mlp, cfg.n_scalar], act_on_output=True
        )
        self.initial_embed = torch.nn.Parameter(
            torch.randn(cfg.n_scalar, cfg.n_tensor * len(sh)) / math.sqrt(cfg.n_scalar)
        )
        self.layers = torch.nn.ModuleList(
            _Layer(cfg, irreps[n], irreps[n + 1], last=n == cfg.n_layers - 1)
            for n in range(cfg.n_layers)
        )
        self.edge_energy = MLP([cfg.n_scalar, *cfg.edge_energy_mlp, 1], act_on_output=False)

    def forward(
        self, vectors: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor, n_atoms: int
    ) -> torch.Tensor:
        """Per-edge energies.

        Args:
            vectors: [E, 3] edge vectors r_j − r_i in Å, in the model dtype.
            species: [N] species index of every atom.
            edge_index: [2, E] centre i (row 0) and neighbour j (row 1).
            n_atoms: N.

        Returns:
            [E] unscaled edge energies.
        """
        if vectors.shape[0] == 0:  # no neighbours anywhere: keep the autograd link
            return vectors.sum(-1)
        centre, neighbour = edge_index[0], edge_index[1]
        zi, zj = species[centre], species[neighbour]
        r = torch.linalg.vector_norm(vectors, dim=-1)
        x = r / self.pair_cutoffs[zi, zj]
        envelope = polynomial_envelope(x, self.cutoff_p)
        sh = o3.spherical_harmonics(
            list(range(self.l_max + 1)), vectors, normalize=True, normalization="component"
        )
        pair = torch.cat(
            [
                torch.nn.functional.one_hot(zi, self.n_species),
                torch.nn.functional.one_hot(zj, self.n_species),
            ],
            dim=-1,
        ).to(vectors.dtype)
        latent = self.two_body(torch.cat([pair, self.bessel(x)], dim=-1)) * envelope.unsqueeze(-1)
        n_edges = vectors.shape[0]
        w0 = (latent @ self.initial_embed).view(n_edges, self.n_tensor, -1)
        features = w0[:, :, self.sh_expand] * sh.unsqueeze(1)
        for layer in self.layers:
            features, latent = layer(
                features, latent, sh, self.sh_expand, envelope, centre, n_atoms, self.env_norm
            )
        return self.edge_energy(latent).squeeze(-1)
