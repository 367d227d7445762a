"""Phase 10: the quarter measured — the columns of ``model.parquet``.

System-wide ratios are computed from the sums of the banks' balance sheets (the banking system as
a supervisor aggregates it), flows from what each institution did this quarter, market liquidity
from the ABS exchange, and the power sector's columns from the sector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nplsim.market import power

if TYPE_CHECKING:
    from nplsim.economy.model import NPLMarketModel

MODEL_COLUMNS = (
    "quarter",
    "npl_ratio",
    "car",
    "provision_coverage",
    "liquidity_ratio",
    "lcr",
    "loan_to_deposit",
    "npl_stock",
    "gross_loans",
    "new_npl",
    "npl_sold_amc",
    "npl_carved_out",
    "npl_securitised",
    "npl_age_q",
    "npl_exit_age_q",
    "abs_issued",
    "abs_outstanding",
    "senior_spread_bp",
    "bid_ask_bp",
    "turnover",
    "effective_spread_bp",
    "secondary_volume",
    "amihud",
    "forced_sale_fill_rate",
    "discount_to_fundamental",
    "quarters_to_sell",
    "liquidity_premium_bp",
    "liquidity_created_amc",
    "liquidity_created_securitisation",
    "liquidity_created_workout",
    "bank_recovery_rate",
    "amc_recovery_to_date",
    "amc_price_to_face",
    "amc_bid_dispersion",
    "investor_losses",
    "enhancer_payouts",
    "recharacterisations",
    "systematic_factor",
    *power.MODEL_COLUMNS,  # NaN or 0 without power plants
)


def measure(model: NPLMarketModel, flows: dict[str, float]) -> dict[str, float]:
    """System-wide metrics of the quarter, one value per column of ``MODEL_COLUMNS``."""
    banks, config = model.banks, model.config
    kept = sum(b.pool_face_on_books for b in banks)
    gross_loans = sum(b.gross_loans for b in banks) + kept
    npl = sum(b.npl_on_books for b in banks)
    provisions = sum(b.provisions for b in banks)
    rwa = sum(b.risk_weighted_assets for b in banks)
    equity = sum(b.equity for b in banks)
    liquid = sum(b.liquid_assets for b in banks)
    short_term = sum(b.short_term_liabilities for b in banks)
    outflows = sum(config.lcr_runoff * b.deposits + b.interbank for b in banks)
    deposits = sum(b.deposits for b in banks)
    sold = sum(b.flows["npl_sold_amc"] for b in banks)
    proceeds = sum(b.flows["amc_sale_proceeds"] for b in banks)
    disposed_face = flows.get("bank_face_closed", 0.0) + sold
    recovered = flows.get("bank_recovered_cash", 0.0) + proceeds
    investors, trustee = model.investors, model.trustee.flows
    return {
        "quarter": model.quarter,
        "npl_ratio": _div(npl, gross_loans),
        "car": _div(equity, rwa),
        "provision_coverage": _div(provisions, npl),
        "liquidity_ratio": _div(liquid, short_term),
        "lcr": _div(liquid, outflows),
        "loan_to_deposit": _div(gross_loans, deposits),
        "npl_stock": npl,
        "gross_loans": gross_loans,
        "new_npl": flows.get("new_npl", 0.0),
        "npl_sold_amc": sold,
        "npl_carved_out": sum(b.flows["npl_carved_out"] for b in banks),
        "npl_securitised": sum(b.flows["npl_securitised"] for b in banks),
        "npl_age_q": model.world.npl_exits.stock_age(),
        "npl_exit_age_q": model.world.npl_exits.exit_age,
        "abs_issued": model.desk.issued,
        "abs_outstanding": model.desk.abs_outstanding(),
        "senior_spread_bp": model.desk.senior_spread_bp(),
        "bid_ask_bp": flows.get("bid_ask_bp", float("nan")),
        "turnover": flows.get("turnover", float("nan")),
        "effective_spread_bp": flows.get("effective_spread_bp", float("nan")),
        "secondary_volume": flows.get("secondary_volume", 0.0),
        "amihud": flows.get("amihud", float("nan")),
        "forced_sale_fill_rate": flows.get("forced_sale_fill_rate", float("nan")),
        "discount_to_fundamental": flows.get("discount_to_fundamental", float("nan")),
        "quarters_to_sell": flows.get("quarters_to_sell", float("nan")),
        "liquidity_premium_bp": model.exchange.liquidity_premium_share()
        * float(np.mean([inv.spec.liquidity_premium_bp for inv in investors]))
        if investors
        else float("nan"),
        "liquidity_created_amc": proceeds,
        "liquidity_created_securitisation": sum(
            b.flows["securitisation_proceeds"] + b.flows["abs_income"] for b in banks
        ),
        "liquidity_created_workout": flows.get("bank_recovered_cash", 0.0)
        - sum(b.flows["workout_costs"] for b in banks),
        "bank_recovery_rate": _div(recovered, disposed_face),
        "amc_recovery_to_date": model.carveout.recovery_to_date,
        "amc_price_to_face": flows.get("amc_price_to_face", float("nan")),
        "amc_bid_dispersion": flows.get("amc_bid_dispersion", float("nan")),
        "investor_losses": trustee["investor_losses"],
        "enhancer_payouts": trustee["enhancer_payouts"],
        "recharacterisations": trustee["recharacterisations"],
        "systematic_factor": model.macro.z,
        **model.power.metrics(),
    }


def _div(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")
