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
    "cet1_ratio",
    "tier1_ratio",
    "provision_coverage",
    "liquidity_ratio",
    "lcr",
    "loan_to_deposit",
    "hqla",
    "interbank_borrowing",
    "central_bank_borrowing",
    "interbank_rate",
    "funding_cost",
    "npl_stock",
    "gross_loans",
    "new_npl",
    "written_off",
    "npl_sold_amc",
    "npl_carved_out",
    "npl_securitised",
    "capital_injected",
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
    "remainder_sales",
    "systematic_factor",
    *power.MODEL_COLUMNS,  # NaN or 0 without power plants
)


def measure(model: NPLMarketModel, flows: dict[str, float]) -> dict[str, float]:
    """System-wide metrics of the quarter, one value per column of ``MODEL_COLUMNS``."""
    banks = model.banks
    kept = sum(b.pool_face_on_books for b in banks)
    gross_loans = sum(b.gross_loans for b in banks) + kept
    npl = sum(b.npl_on_books for b in banks)
    rwa = sum(b.risk_weighted_assets for b in banks)
    deposits = sum(b.deposits for b in banks)
    sold = sum(b.flows["npl_sold_amc"] for b in banks)
    proceeds = sum(b.flows["amc_sale_proceeds"] for b in banks)
    disposed_face = flows.get("bank_face_closed", 0.0) + sold
    recovered = flows.get("bank_recovered_cash", 0.0) + proceeds
    investors, trustee = model.investors, model.trustee.flows

    def total(name: str) -> float:
        return float(sum(getattr(b, name) for b in banks))

    def flow(name: str) -> float:
        return float(sum(b.flows[name] for b in banks))

    balances = [b.funding_balances() for b in banks]
    rates = [b.funding_rates() for b in banks]
    interest = sum(
        sum(bal[k] * rate[k] for k in bal) for bal, rate in zip(balances, rates, strict=True)
    )
    return {
        "quarter": model.quarter,
        "npl_ratio": _div(npl, gross_loans),
        "car": _div(total("total_capital"), rwa),
        "cet1_ratio": _div(total("cet1"), rwa),
        "tier1_ratio": _div(total("cet1") + total("additional_tier1"), rwa),
        "provision_coverage": _div(total("provisions"), npl),
        "liquidity_ratio": _div(total("current_assets"), total("current_liabilities")),
        "lcr": _div(total("hqla"), total("net_outflows")),
        "loan_to_deposit": _div(gross_loans, deposits),
        "hqla": total("hqla"),
        "interbank_borrowing": total("interbank"),
        "central_bank_borrowing": total("central_bank_borrowing"),
        "interbank_rate": model.world.funding.interbank_rate,
        "funding_cost": _div(interest, sum(sum(bal.values()) for bal in balances)),
        "npl_stock": npl,
        "gross_loans": gross_loans,
        "new_npl": flows.get("new_npl", 0.0),
        "written_off": flow("written_off"),
        "npl_sold_amc": sold,
        "npl_carved_out": flow("npl_carved_out"),
        "npl_securitised": flow("npl_securitised"),
        "capital_injected": flow("capital_injected"),
        "npl_age_q": model.world.npl_exits.stock_age(),
        "npl_exit_age_q": model.world.npl_exits.exit_age,
        "abs_issued": model.desk.issued,
        "abs_outstanding": model.desk.abs_outstanding(),
        "senior_spread_bp": senior_spread_bp(model),
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
        "liquidity_created_securitisation": flow("securitisation_proceeds") + flow("abs_income"),
        "liquidity_created_workout": flows.get("bank_recovered_cash", 0.0) - flow("workout_costs"),
        "bank_recovery_rate": _div(recovered, disposed_face),
        "amc_recovery_to_date": model.recorder.amc_recovery_to_date(),
        "amc_price_to_face": flows.get("amc_price_to_face", float("nan")),
        "amc_bid_dispersion": flows.get("amc_bid_dispersion", float("nan")),
        "investor_losses": trustee["investor_losses"],
        "enhancer_payouts": trustee["enhancer_payouts"],
        "recharacterisations": trustee["recharacterisations"],
        "remainder_sales": trustee["remainder_sales"],
        "systematic_factor": model.macro.z,
        **model.power.metrics(),
    }


def senior_spread_bp(model: NPLMarketModel) -> float:
    """Senior coupon over the government bond yield, weighted by the senior balance of live
    deals, and by the senior issued for deals issued this quarter (so that a quarter with
    issues has a spread even if a senior was repaid within it); NaN without either."""
    desk, quarter = model.desk, model.quarter
    issued_now = {r["deal_id"]: r for r in desk.deal_rows if r["quarter_issued"] == quarter}
    rf = model.config.macro.gov_bond_yield
    weights, spreads = [], []
    for spv in desk.live():
        if spv.deal_id in issued_now:
            continue
        index = spv.terms.book_index
        weights.append(float(desk.book.balance["senior"][index]))
        spreads.append(float((desk.book.coupon["senior"][index] - rf) * 1e4))
    for row in issued_now.values():
        if row["senior_size"] > 0:  # a deal that placed no senior tranche has no senior spread
            weights.append(float(row["senior_size"]))
            spreads.append(float(row["senior_spread_bp"]))
    if sum(weights) <= 0:
        return float("nan")
    return float(np.average(spreads, weights=weights))


def _div(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")
