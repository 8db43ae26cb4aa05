"""The machine a self-hosted option was measured on, next to the machine it is priced as.

A cost is hardware $/hour ÷ the throughput measured on some machine. When the machine measured is not the
machine priced (another GPU, another CPU vendor, another core count), the figure prices one box with
another's speed; and when the load generator ran on the serving machine itself, it took cores the server
would otherwise have had. Both are said where the figure is shown (flags `hardware_mismatch`,
`shared_cores`), from what the run stored: the server's accelerators (its /llmbench/info, on the serving
machine) and whether the client reached it over loopback (bench.provenance).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bench.documents import Provenance
from bench.registry import Hardware

_VENDORS = (
    ("intel", ("intel", "xeon", "core(tm)")),
    ("amd", ("amd", "epyc", "ryzen")),
    ("arm", ("graviton", "ampere", "neoverse", "arm")),
    ("apple", ("apple", " m1", " m2", " m3", " m4")),
)


@dataclass(frozen=True, slots=True)
class Machine:
    """What a run's server ran on, as it reported it: GPUs (name, count), else its CPU and cores."""

    gpus: tuple[str, ...]
    cpu: str | None
    cores: int | None
    shared: bool  # the load generator ran on the same machine (it reached the server over loopback)

    @property
    def label(self) -> str:
        """'1x NVIDIA H100 80GB HBM3' or 'Intel(R) Xeon(R) Processor, 2 cores'."""
        if self.gpus:
            names = sorted(set(self.gpus))
            return ", ".join(f"{self.gpus.count(n)}x {n}" for n in names)
        cores = f", {self.cores} cores" if self.cores else ""
        return f"{self.cpu or 'unknown CPU'}{cores}"

    def to_json(self) -> dict[str, Any]:
        return {"gpus": list(self.gpus), "cpu": self.cpu, "cores": self.cores, "shared": self.shared,
                "label": self.label}  # fmt: skip


def measured_machine(provenance: Provenance) -> Machine | None:
    """The serving machine a run stored (server accelerators), or None when the server did not say."""
    server = provenance.server
    accelerators = server.accelerators
    if not accelerators:
        return None
    gpus = tuple(str(a.get("name") or "GPU") for a in accelerators if a.get("kind") == "gpu")
    cpu = next((a for a in accelerators if a.get("kind") == "cpu"), None)
    cores = cpu.get("cores") if cpu else None
    return Machine(
        gpus=gpus,
        cpu=None if cpu is None else cpu.get("name"),
        cores=int(cores) if isinstance(cores, int) else None,
        shared=server.same_host,
    )


def _vendor(text: str | None) -> str | None:
    low = f" {(text or '').lower()}"
    return next((v for v, marks in _VENDORS if any(m in low for m in marks)), None)


def _gpu_family(name: str) -> str:
    """'H100 SXM 80GB' -> 'h100'; 'L4 24GB' -> 'l4': the model number a GPU name must contain."""
    first = re.split(r"[\s-]+", name.strip())[0].lower()
    return first.removeprefix("nvidia")


def mismatch(priced: Hardware, measured: Machine) -> str | None:
    """Why the machine measured is not the machine priced; None when they agree as far as both say."""
    if priced.gpu is not None:
        if not measured.gpus:
            return f"priced as {priced.label}; measured on a CPU only ({measured.label})"
        family = _gpu_family(priced.gpu)
        same = [g for g in measured.gpus if family and family in g.lower().replace(" ", "")]
        if len(same) != priced.count:
            return f"priced as {priced.label}; measured on {measured.label}"
        return None
    if measured.gpus:
        return f"priced as CPU-only {priced.label}; measured on {measured.label}"
    reasons = []
    want, got = _vendor(priced.cpu), _vendor(measured.cpu)
    if want and got and want != got:
        names = {"intel": "Intel", "amd": "AMD", "arm": "Arm", "apple": "Apple"}
        reasons.append(f"CPU vendor {names[got]}, not {names[want]}")
    if priced.vcpus and measured.cores and priced.vcpus != measured.cores:
        reasons.append(f"{measured.cores} cores, not {priced.vcpus}")
    if not reasons:
        return None
    return f"priced as {priced.label}; measured on {measured.label}: " + ", ".join(reasons)


def shared_cores(measured: Machine) -> str | None:
    """The caveat of a load generator that ran on the serving machine, or None."""
    if not measured.shared:
        return None
    if measured.gpus:
        return "the load generator ran on the serving machine (loopback), sharing its CPU with the server"
    cores = f"its {measured.cores} cores" if measured.cores else "its cores"
    return (
        f"the load generator ran on the serving machine (loopback), sharing {cores} with a CPU-only "
        "server: the server's throughput is understated"
    )
