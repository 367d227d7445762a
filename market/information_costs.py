"""What it costs a lender or an investor to know and to watch the power plants it funds.

The cost technology of the power-plant study (docs/ODD.md, power sector; facts:
cost-saving-theory). Whoever funds a plant pays once to appraise it and every year to monitor it,
and passes both on in the price of the funding. For a claim on plants ``i = 1..n`` with amounts
``a_i`` (``H = Σ (a_i / Σ a)²`` the Herfindahl index, ``n_eff = 1 / H``):

- **effort** ``e = clip(1 − u · n_eff, 0, 1)``: how much of each plant's own (idiosyncratic) risk
  must be known. A holder accepts a share ``u`` (``tolerance``) of one plant's own uncertainty
  unexamined; a holder of a diversified claim bears only a share ``H`` of each member's own risk,
  so it may leave ``u · n_eff`` of each unexamined — diversification reduces what must be known
  about each plant;
- **appraisal units** ``U = 1 + (1 − s · D) · (n − 1)``: a pool is appraised at once, and what
  is learnt on one plant carries over to the others as far as they are alike (``s``, the members'
  similarity) and as far as plant-level data are published in a standard form to reuse (``D``,
  the regime's ``disclosure_level``); with disclosure problems every plant is appraised from
  scratch;
- **appraisal** (once, at funding) ``A = a₀ + a₁ · e · U``: ``a₀`` the common part (coal market,
  grid, tariff policy), ``a₁`` one plant examined in full;
- **monitoring** (a year) ``M = c · e · U``: ``c`` is ``m₁`` where the holder monitors the plant
  itself (a bank loan, a stand-alone ABS) and ``r₁`` where a trustee's standardised report on
  every member replaces that (the Securitization Center's pool).

With one plant every route pays the same appraisal (``n = 1``: ``U = 1``, ``e = 1 − u``), so the
information saving of a pool vanishes; it grows with the number and the similarity of the plants
pooled and shrinks as disclosure falls. The parameters are the ``[power.information]`` block
(``InformationSpec``), each an assumption: no public source prices the due diligence of a Chinese
coal plant. Plain numpy; money in CNY bn unless a name says ``_cny_m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class InformationSpec(BaseModel):
    """The ``[power.information]`` block: the appraisal and monitoring technology (assumptions)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    appraisal_fixed_cny_m: float = Field(
        default=0.5,
        ge=0,
        le=1000,
        description="a0: appraising what all plants share (coal, grid, tariff policy), CNY m.",
    )
    appraisal_plant_cny_m: float = Field(
        default=3.0,
        ge=0,
        le=1000,
        description="a1: examining one plant in full (engineering, fuel, grid, legal), CNY m.",
    )
    monitoring_plant_cny_m_per_year: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="m1: a lender's or investor's own monitoring of one plant, CNY m a year.",
    )
    reporting_plant_cny_m_per_year: float = Field(
        default=0.1,
        ge=0,
        le=1000,
        description="r1: one plant in a trustee's standardised report, CNY m a year.",
    )
    tolerance: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="u: share of one plant's own risk a holder leaves unexamined.",
    )
    similarity_bandwidth: float = Field(
        default=0.15,
        gt=0,
        le=5,
        description="h: spread of log plant characteristics over which appraisals stop carrying"
        " over.",
    )


def appraisal_effort(concentration: float, tolerance: float) -> float:
    """Share of each plant's own risk that must be examined, ``clip(1 − u / H, 0, 1)``.

    Args:
        concentration: Herfindahl index ``H`` of the claim's plants (1 for one plant).
        tolerance: ``u``, the share of one plant's own risk a holder leaves unexamined.
    """
    if concentration <= 0:
        return 0.0
    return float(np.clip(1.0 - tolerance / concentration, 0.0, 1.0))


def similarity(characteristics: np.ndarray, bandwidth: float) -> float:
    """How alike the plants of a claim are, ``exp(−d / h)``: ``d`` is the spread of their log
    characteristics, ``√(Σ_k var_k)`` over the columns (heat rate, hours, tariff); 1 for one plant.

    Args:
        characteristics: plants × characteristics, positive.
        bandwidth: ``h`` (``InformationSpec.similarity_bandwidth``).
    """
    logs = np.log(np.atleast_2d(np.asarray(characteristics, dtype=float)))
    if logs.shape[0] < 2:
        return 1.0
    spread = math.sqrt(float(logs.var(axis=0).sum()))
    return math.exp(-spread / bandwidth)


def appraisal_units(n_plants: int, alike: float, disclosure: float) -> float:
    """Plant appraisals a claim needs once what is learnt on one plant is reused on the others,
    ``1 + (1 − s · D) · (n − 1)``: reuse needs alike plants and published plant-level data."""
    return 1.0 + (1.0 - alike * disclosure) * (n_plants - 1)


@dataclass(frozen=True)
class InformationCost:
    """What knowing and watching a claim's plants costs (CNY bn), and why."""

    appraisal: float  # once, at funding
    monitoring_per_year: float
    effort: float
    units: float


def information_cost(
    amounts: np.ndarray,
    alike: float,
    disclosure: float,
    standard_reporting: bool,
    spec: InformationSpec,
) -> InformationCost:
    """Appraisal and monitoring of a claim on one plant (a loan, a stand-alone ABS) or on a pool.

    Args:
        amounts: the amount each plant raises (CNY bn); their concentration sets the effort.
        alike: the plants' similarity ``s`` (:func:`similarity`).
        disclosure: the regime's ``disclosure_level`` ``D``.
        standard_reporting: whether a trustee's standardised report replaces own monitoring.
        spec: the cost parameters.
    """
    amounts = np.asarray(amounts, dtype=float)
    total = float(amounts.sum())
    concentration = float(((amounts / total) ** 2).sum()) if total > 0 else 1.0
    effort = appraisal_effort(concentration, spec.tolerance)
    units = appraisal_units(amounts.size, alike, disclosure)
    per_plant = (
        spec.reporting_plant_cny_m_per_year
        if standard_reporting
        else spec.monitoring_plant_cny_m_per_year
    )
    return InformationCost(
        appraisal=(spec.appraisal_fixed_cny_m + spec.appraisal_plant_cny_m * effort * units) / 1e3,
        monitoring_per_year=per_plant * effort * units / 1e3,
        effort=effort,
        units=units,
    )
