"""The Allegro edge network: per-edge energies from edge vectors.

Allegro: Musaelian et al., Nat. Commun. 14, 579 (2023).

Layout. Tensor features are stored component-major, ``[irreps_dim, n_edges, n_tensor]``:
every slice ``x[m]`` is a contiguous ``[E, F]`` matrix. Then

- the channel-wise tensor product is a short, fixed list of element-wise products of
  ``[E, F]`` slices: only the non-zero Clebsch–Gordan coefficients (10 of 128 for l_max 1)
  are multiplied, and nothing of size ``D_in·D_sh·E·F`` is ever formed;
- the equivariant channel mixing after it is one ``[dim·E, F] @ [F, F]`` GEMM per path;
- the environment sum is an ``index_add`` along the edge axis.

No permutes, no index-expansions, no slicing of large tensors: forward and backward are
GEMMs and contiguous element-wise passes, fast on CPU and GPU alike, and easy for a compiler
to fuse.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from ..config import ModelConfig
from .irreps import SCALAR, Irrep, cg_tensor, irreps_dim, layer_irreps, layer_paths, sh_irreps
from .radial import BesselBasis, polynomial_envelope


def _weight(*shape: int, fan_in: int) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.randn(*shape) / math.sqrt(fan_in))


class MLP(torch.nn.Module):
    """Bias-free MLP with SiLU, so that a zero input gives a zero output."""

    def __init__(self, widths: list[int], act_on_output: bool) -> None:
        super().__init__()
        self.weights = torch.nn.ParameterList(
            _weight(a, b, fan_in=a) for a, b in zip(widths, widths[1:])
        )
        self.act_on_output = act_on_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for n, w in enumerate(self.weights):
            x = x @ w
            if n < last or self.act_on_output:
                x = torch.nn.functional.silu(x)
        return x


def _nonzero_terms(cg: torch.Tensor) -> list[list[tuple[int, int, float]]]:
    """For each output component k of C[a, b, k]: its non-zero entries as (a, b, C[a, b, k]).

    Every output component of a path has at least one entry (Wigner 3j blocks have no zero
    columns), so no output is empty.
    """
    terms = []
    for k in range(cg.shape[-1]):
        block = cg[..., k]
        terms.append([(a, b, float(block[a, b])) for a, b in torch.nonzero(block).tolist()])
    return terms


def _weighted_harmonics(weights: torch.Tensor, sh: torch.Tensor, l_max: int) -> torch.Tensor:
    """[D_sh, E, F] features w[e, l, u] · Y[m, e] for each l and m of the harmonics.

    Args:
        weights: [E, l_max + 1, F] per-edge, per-l channel weights.
        sh: [D_sh, E] spherical harmonics, component-major.
    """
    parts = []
    for l in range(l_max + 1):
        parts.append(weights[:, l].unsqueeze(0) * sh[l * l : (l + 1) ** 2].unsqueeze(-1))
    return torch.cat(parts, dim=0)


class _Layer(torch.nn.Module):
    """One Allegro layer: environment sum, channel-wise tensor product, latent update, mix."""

    def __init__(
        self, cfg: ModelConfig, irreps_in: list[Irrep], irreps_out: list[Irrep], last: bool
    ) -> None:
        super().__init__()
        s, f = cfg.n_scalar, cfg.n_tensor
        sh = sh_irreps(cfg.l_max)
        paths = layer_paths(irreps_in, sh, irreps_out)
        cg = cg_tensor(irreps_in, sh, paths, torch.get_default_dtype())
        # The dense coupling stays in the state dict (older model files carry it); the
        # product itself uses its non-zero entries only.
        self.register_buffer("coupling", cg.reshape(-1, cg.shape[-1]).T.contiguous())
        self.terms = _nonzero_terms(cg)
        self.d_in, self.d_sh, self.l_max = irreps_dim(irreps_in), irreps_dim(sh), cfg.l_max
        # Output irrep blocks along K: (l, number of paths); within a block k = (path, m).
        self.blocks = [(c[0], sum(p.irrep_out == c for p in paths)) for c in irreps_out]
        self.scalar_block = irreps_out.index(SCALAR)
        n_sp = self.blocks[self.scalar_block][1]
        self.n_tensor = f
        self.latent_mlp = MLP([s + n_sp * f, *cfg.latent_mlp, s], act_on_output=True)
        self.alpha = torch.nn.Parameter(torch.tensor(cfg.resnet_alpha))
        self.last = last
        self.mix = torch.nn.ParameterList(
            _weight(n, f, f, fan_in=n * f) for _, n in (self.blocks if not last else [])
        )

    def forward(
        self,
        features: torch.Tensor,
        latent: torch.Tensor,
        env_weights: torch.Tensor,
        sh: torch.Tensor,
        envelope: torch.Tensor,
        centre: torch.Tensor,
        n_atoms: int,
        env_norm: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """features [D_in, E, F], latent [E, S], env_weights [E, l_max+1, F], sh [D_sh, E]."""
        n_edges, f = latent.shape[0], features.shape[-1]
        env = self.environment(env_weights, sh, centre, n_atoms, env_norm)
        blocks = self.tensor_product(features, env)
        scalars = blocks[self.scalar_block].reshape(n_edges, -1)
        update = self.latent_mlp(torch.cat([latent, scalars], dim=-1)) * envelope.unsqueeze(-1)
        norm = torch.rsqrt(1.0 + self.alpha * self.alpha)
        latent = norm * latent + self.alpha * norm * update
        if self.last:
            return features, latent
        return self._mix(blocks, n_edges, f), latent

    def environment(
        self,
        env_weights: torch.Tensor,
        sh: torch.Tensor,
        centre: torch.Tensor,
        n_atoms: int,
        env_norm: float,
    ) -> torch.Tensor:
        """[D_sh, E, F]: each edge's centre environment, the weighted harmonics summed over it."""
        env_edge = _weighted_harmonics(env_weights, sh, self.l_max)
        f = env_edge.shape[-1]
        env = torch.zeros(self.d_sh, n_atoms, f, dtype=env_edge.dtype, device=env_edge.device)
        return env.index_add(1, centre, env_edge).mul(env_norm).index_select(1, centre)

    def tensor_product(self, features: torch.Tensor, env: torch.Tensor) -> list[torch.Tensor]:
        """Channel-wise products of features [D_in, E, F] with env [D_sh, E, F].

        Returns:
            one tensor [2l+1, E, n, F] per output irrep block (l, n): component m of path p
            at ``[m, :, p]``, so that the paths of a block sit side by side for one mixing GEMM.
        """
        x, y = features.unbind(0), env.unbind(0)
        flat = []
        for terms in self.terms:
            total = None
            for a, b, c in terms:
                product = x[a] * y[b] if c == 1.0 else x[a] * y[b] * c
                total = product if total is None else total + product
            flat.append(total)
        blocks, start = [], 0
        for l, n in self.blocks:  # within a block, k = start + p·(2l+1) + m
            d = 2 * l + 1
            rows = [
                torch.stack([flat[start + p * d + m] for p in range(n)], dim=1) for m in range(d)
            ]
            blocks.append(torch.stack(rows))
            start += n * d
        return blocks

    def _mix(self, blocks: list[torch.Tensor], n_edges: int, f: int) -> torch.Tensor:
        """[D_out, E, F]: per block, all paths mixed into F channels by one GEMM."""
        out = []
        for (l, n), block, w in zip(self.blocks, blocks, self.mix):
            d = 2 * l + 1
            mixed = block.reshape(d * n_edges, n * f) @ w.reshape(n * f, f)
            out.append(mixed.view(d, n_edges, f))
        return torch.cat(out, dim=0)


class Allegro(torch.nn.Module):
    """Per-edge energies E_ij from edge vectors and the species of both ends."""

    def __init__(self, cfg: ModelConfig, n_species: int, pair_cutoffs: torch.Tensor) -> None:
        super().__init__()
        self.l_max, self.cutoff_p, self.n_species = cfg.l_max, cfg.cutoff_p, n_species
        self.env_norm = 1.0 / math.sqrt(cfg.avg_num_neighbors)
        irreps = layer_irreps(cfg.l_max, cfg.n_layers, cfg.parity)
        self.register_buffer("pair_cutoffs", pair_cutoffs)  # [T, T] in Å
        self.bessel = BesselBasis(cfg.num_bessel, cfg.trainable_bessel)
        self.two_body = MLP(
            [2 * n_species + cfg.num_bessel, *cfg.two_body_mlp, cfg.n_scalar], act_on_output=True
        )
        # Embeddings latent -> per-l channel weights: [initial features, env of layer 0] in one
        # matrix (one GEMM on the two-body latent), then one matrix per later layer.
        n_l = cfg.l_max + 1
        self.embeds = torch.nn.ParameterList(
            _weight(cfg.n_scalar, (2 if n == 0 else 1) * n_l * cfg.n_tensor, fan_in=cfg.n_scalar)
            for n in range(cfg.n_layers)
        )
        self.layers = torch.nn.ModuleList(
            _Layer(cfg, irreps[n], irreps[n + 1], last=n == cfg.n_layers - 1)
            for n in range(cfg.n_layers)
        )
        self.edge_energy = MLP([cfg.n_scalar, *cfg.edge_energy_mlp, 1], act_on_output=False)

    def forward(
        self,
        vectors: torch.Tensor,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        n_atoms: int,
        return_latent: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Per-edge energies.

        Args:
            vectors: [E, 3] edge vectors r_j − r_i in Å, in the model dtype.
            species: [N] species index of every atom.
            edge_index: [2, E] centre i (row 0) and neighbour j (row 1).
            n_atoms: N.
            return_latent: also return the final scalar latents [E, n_scalar].

        Returns:
            [E] unscaled edge energies (and the latents).
        """
        if vectors.shape[0] == 0:  # no neighbours anywhere: keep the autograd link
            energy = vectors.sum(-1)
            latent = vectors.new_zeros(0, self.edge_energy.weights[0].shape[0])
            return (energy, latent) if return_latent else energy
        centre, neighbour = edge_index[0], edge_index[1]
        zi, zj = species[centre], species[neighbour]
        r = torch.linalg.vector_norm(vectors, dim=-1)
        x = r / self.pair_cutoffs[zi, zj]
        envelope = polynomial_envelope(x, self.cutoff_p)
        sh = o3.spherical_harmonics(
            list(range(self.l_max + 1)), vectors, normalize=True, normalization="component"
        ).T.contiguous()
        # One-hot by comparison: torch's one_hot reads the indices' range back to the host.
        types = torch.arange(self.n_species, device=species.device)
        pair = torch.cat([zi.unsqueeze(-1) == types, zj.unsqueeze(-1) == types], dim=-1)
        radial = torch.cat([pair.to(vectors.dtype), self.bessel(x)], dim=-1)
        latent = self.two_body(radial) * envelope.unsqueeze(-1)
        n_edges, n_l = vectors.shape[0], self.l_max + 1
        first = (latent @ self.embeds[0]).view(n_edges, 2 * n_l, -1)
        features = _weighted_harmonics(first[:, :n_l], sh, self.l_max)
        env_weights = first[:, n_l:]
        for n, layer in enumerate(self.layers):
            if n > 0:
                env_weights = (latent @ self.embeds[n]).view(n_edges, n_l, -1)
            features, latent = layer(
                features, latent, env_weights, sh, envelope, centre, n_atoms, self.env_norm
            )
        energy = self.edge_energy(latent).squeeze(-1)
        return (energy, latent) if return_latent else energy

    def energy_and_gradient(
        self,
        vectors: torch.Tensor,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        n_atoms: int,
        cotangent: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-edge energies and the gradient of Σ_e w_e·E_e with respect to the vectors.

        For inference: nothing is kept for a later backward pass. Compiled models replace
        this with one traced graph of the forward and its vector-Jacobian product.

        Args:
            vectors, species, edge_index, n_atoms: as for :meth:`forward`.
            cotangent: [E] weights w_e (dE_total/dE_e), in the model dtype.

        Returns:
            ([E] edge energies, [E, 3] gradient), both detached.
        """
        with torch.enable_grad():
            leaf = vectors.detach().requires_grad_(True)
            energy = self(leaf, species, edge_index, n_atoms)
            (grad,) = torch.autograd.grad(energy, leaf, cotangent)
        return energy.detach(), grad
