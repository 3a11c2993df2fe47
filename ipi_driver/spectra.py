"""Vibrational density of states from velocity autocorrelation (numpy only).

Library units: velocities in Å/fs, masses in amu, time step in fs, frequencies in cm⁻¹.
A spectrum is normalised to degrees of freedom: with ``temperature_K`` its integral over
cm⁻¹ is Σ m⟨v²⟩/k_BT, i.e. 3 per atom (or per part: 3 translations and 3 rotations per
molecule, the rest internal) at equipartition.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

C_CM_PER_FS = 2.99792458e-5  # speed of light in cm/fs: ν̃ [cm⁻¹] = f [1/fs] / c
KB_EV_PER_K = 8.617333262e-5
AMU_A2_PER_FS2_IN_EV = 103.642696  # 1 amu Å²/fs² in eV
ATOMIC_VELOCITY_A_PER_FS = 0.5291772105638411 / 0.02418884326585747  # Bohr/(ħ/Eh) in Å/fs

# Experimental ammonia frequencies (cm⁻¹). The solid NH3-I values are approximate (not
# checked against a primary source); the lattice bands are ranges (translations, librations).
NH3_GAS_CM1 = {"ν1": 3337.0, "ν3": 3444.0, "ν4": 1627.0, "ν2": 950.0}
NH3_SOLID_CM1 = {"ν1": 3210.0, "ν3": 3375.0, "ν4": 1650.0, "ν2": 1060.0}
NH3_SOLID_BANDS_CM1 = {"translations": (100.0, 200.0), "librations": (250.0, 450.0)}


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """A density of states: ``intensity`` [F] (per cm⁻¹) at ``frequency_cm1`` [F]."""

    frequency_cm1: np.ndarray
    intensity: np.ndarray

    def integral(self, lo_cm1: float = 0.0, hi_cm1: float = np.inf) -> float:
        keep = (self.frequency_cm1 >= lo_cm1) & (self.frequency_cm1 <= hi_cm1)
        return float(np.trapezoid(self.intensity[keep], self.frequency_cm1[keep]))

    def peak_cm1(self, lo_cm1: float = 0.0, hi_cm1: float = np.inf) -> float:
        keep = (self.frequency_cm1 >= lo_cm1) & (self.frequency_cm1 <= hi_cm1)
        if not keep.any():
            raise ValueError(f"no frequency of the spectrum lies in [{lo_cm1}, {hi_cm1}] cm^-1")
        return float(self.frequency_cm1[keep][np.argmax(self.intensity[keep])])


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """[max_lag] ⟨x(0)·x(t)⟩ averaged over time origins, summed over all other axes.

    Args:
        x: [T, ...] time series (axis 0 is time).
        max_lag: number of lags (0 .. max_lag-1), at most T.
    """
    n_frames = x.shape[0]
    if not 1 <= max_lag <= n_frames:
        raise ValueError(f"max_lag must be between 1 and the {n_frames} frames, got {max_lag}")
    flat = x.reshape(n_frames, -1)
    n_fft = 2 ** int(np.ceil(np.log2(2 * n_frames)))
    f = np.fft.rfft(flat, n=n_fft, axis=0)
    acf = np.fft.irfft((f * f.conj()).real.sum(axis=1), n=n_fft)[:max_lag]
    return acf / (n_frames - np.arange(max_lag))


def vdos(
    velocities_A_fs: np.ndarray,
    timestep_fs: float,
    masses_amu: np.ndarray | None = None,
    resolution_cm1: float = 20.0,
    temperature_K: float | None = None,
) -> Spectrum:
    """Vibrational density of states of ``velocities_A_fs`` [T, N, 3] sampled every ``timestep_fs``.

    The velocity autocorrelation (mass-weighted when masses are given) is cut by a Hann
    window of length 1/(c·resolution_cm1) and cosine-transformed. Without a temperature the
    spectrum integrates to one.
    """
    if timestep_fs <= 0 or resolution_cm1 <= 0:
        raise ValueError("timestep_fs and resolution_cm1 must be positive")
    v = np.asarray(velocities_A_fs, dtype=np.float64)
    if v.ndim != 3 or v.shape[2] != 3:
        raise ValueError(f"velocities must have shape [frames, atoms, 3], got {v.shape}")
    if masses_amu is not None:
        v = v * np.sqrt(np.asarray(masses_amu, dtype=np.float64))[None, :, None]
    max_lag = min(v.shape[0], int(np.ceil(1.0 / (C_CM_PER_FS * resolution_cm1 * timestep_fs))))
    acf = autocorrelation(v, max_lag)
    window = np.hanning(2 * max_lag + 1)[max_lag:-1]
    # zero padding: a grid at least 4x finer than the resolution, even for short runs
    fine = int(np.ceil(4.0 / (C_CM_PER_FS * resolution_cm1 * timestep_fs)))
    n_fft = 2 ** int(np.ceil(np.log2(max(8 * max_lag, fine))))
    spectrum = 2 * np.fft.rfft(acf * window, n=n_fft).real - acf[0]
    frequency = np.fft.rfftfreq(n_fft, d=timestep_fs) / C_CM_PER_FS
    spectrum = np.clip(spectrum, 0.0, None)
    total = 1.0
    if temperature_K is not None:
        total = acf[0] * AMU_A2_PER_FS2_IN_EV / (KB_EV_PER_K * temperature_K)
    spectrum *= total / np.trapezoid(spectrum, frequency)
    return Spectrum(frequency_cm1=frequency, intensity=spectrum)


def split_molecular(
    positions_A: np.ndarray,
    velocities_A_fs: np.ndarray,
    masses_amu: np.ndarray,
    molecules: np.ndarray,
    cell_A: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Split velocities [T, N, 3] into translational, rotational and internal parts.

    Translational: each atom carries its molecule's centre-of-mass velocity (lattice
    modes); rotational: ω × r of the molecule's rigid rotation (librations); internal:
    the rest. The parts are mass-orthogonal, so their kinetic energies add up.

    Args:
        positions_A: [T, N, 3] (unwrapped or wrapped; bonds use the minimum image of cell_A).
        molecules: [N] int molecule of each atom (see ``structures.molecule_index``).
        cell_A: [3, 3] cell rows for the minimum image, None for molecules kept whole.
    """
    x, v = np.asarray(positions_A, float), np.asarray(velocities_A_fs, float)
    m = np.asarray(masses_amu, float)
    parts = {k: np.zeros_like(v) for k in ("translational", "rotational", "internal")}
    for mol in np.unique(molecules):
        idx = np.flatnonzero(molecules == mol)
        trans, rot = _rigid_parts(x[:, idx], v[:, idx], m[idx], cell_A)
        parts["translational"][:, idx] = trans
        parts["rotational"][:, idx] = rot
        parts["internal"][:, idx] = v[:, idx] - trans - rot
    return parts


def _rigid_parts(x, v, m, cell):
    """Centre-of-mass and rigid-rotation velocities of one molecule: x, v [T, n, 3]."""
    d = x - x[:, :1]
    if cell is not None:
        frac = d @ np.linalg.inv(cell)
        d = (frac - np.round(frac)) @ cell
    total = m.sum()
    r = d - np.einsum("i,tij->tj", m, d)[:, None] / total
    v_com = np.einsum("i,tij->tj", m, v) / total
    u = v - v_com[:, None]
    angular = np.einsum("i,tij->tj", m, np.cross(r, u))
    r2 = np.einsum("tij,tij->ti", r, r)
    inertia = np.einsum("i,ti->t", m, r2)[:, None, None] * np.eye(3) - np.einsum(
        "i,tij,tik->tjk", m, r, r
    )
    omega = np.linalg.solve(inertia, angular[..., None])[..., 0]
    rot = np.cross(omega[:, None], r)
    return np.broadcast_to(v_com[:, None], v.shape), rot


def read_ipi_xyz(path: str | Path) -> tuple[np.ndarray, list[str], list[str]]:
    """Frames of an i-PI xyz trajectory: ([T, N, 3] values as written, symbols, comments)."""
    lines = Path(path).read_text().splitlines()
    if not lines:
        raise ValueError(f"{path} is empty: did i-PI write any frame?")
    n_atoms = int(lines[0])
    n_frames = len(lines) // (n_atoms + 2)
    frames, comments = np.empty((n_frames, n_atoms, 3)), []
    symbols = [ln.split()[0] for ln in lines[2 : 2 + n_atoms]]
    for t in range(n_frames):
        start = t * (n_atoms + 2)
        comments.append(lines[start + 1])
        block = lines[start + 2 : start + 2 + n_atoms]
        frames[t] = np.array([ln.split()[1:4] for ln in block], dtype=np.float64)
    return frames, symbols, comments


def ipi_cell_A(comment: str) -> np.ndarray:
    """Cell rows (Å) from an i-PI xyz comment ``# CELL(abcABC): a b c α β γ ...``."""
    from ase.geometry import cellpar_to_cell

    fields = comment.split("CELL(abcABC):")[1].split()[:6]
    return cellpar_to_cell([float(f) for f in fields])


def plot_vdos(spectra: dict[str, Spectrum], ax=None, reference: str = "solid", max_cm1=4000.0):
    """Plot spectra with the experimental ammonia frequencies as vertical lines."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.subplots(figsize=(7, 3.5))[1]
    for label, s in spectra.items():
        keep = s.frequency_cm1 <= max_cm1
        ax.plot(s.frequency_cm1[keep], s.intensity[keep], label=label)
    lines = NH3_SOLID_CM1 if reference == "solid" else NH3_GAS_CM1
    for name, nu in lines.items():
        ax.axvline(nu, color="k", ls=":", lw=0.8)
        ax.text(nu, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom")
    if reference == "solid":
        for lo, hi in NH3_SOLID_BANDS_CM1.values():
            ax.axvspan(lo, hi, color="0.9", zorder=0)
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.set_ylabel("VDOS (DOF per cm$^{-1}$)")
    ax.legend(fontsize="small")
    return ax
