"""The run's output tables other than ``model.parquet`` (which the DataCollector keeps): banks and
AMCs quarter by quarter, and the deals the desk issued."""

from __future__ import annotations

from typing import Any

import pandas as pd

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank

DEAL_COLUMNS = [
    "deal_id", "originator", "quarter_cutoff", "quarter_issued", "closing_lag_q", "pool_loans",
    "pool_borrowers", "pool_principal", "pool_face", "pool_expected_recovery", "pool_public_value",
    "lemons_factor", "originator_bias", "collection_sigma", "distress_prob", "court_reach",
    "recharacterisation_loss", "issued_total", "senior_size", "mezz_size", "sub_size",
    "senior_rating", "mezz_rating", "senior_coupon", "mezz_coupon", "senior_spread_bp",
    "senior_expected_loss_bp", "senior_unexpected_loss_bp", "senior_legal_premium_bp",
    "senior_information_premium_bp", "senior_liquidity_premium_bp", "senior_bid_to_cover",
    "sub_price", "sub_required_return", "fees_total", "transfer_costs", "notice_cost", "retained",
    "retention_required", "reserve", "proceeds_to_originator", "net_proceeds_per_face",
    "guarantor", "guarantee_fee_bp", "servicer", "expected_collections", "realised_collections",
    "realised_to_expected",
]  # fmt: skip


class AgentRecorder:
    """Each quarter's row of every bank (``banks.parquet``) and AMC (``amcs.parquet``), and the
    AMCs' cumulative recoveries on what they acquired."""

    def __init__(self, banks: list[StateBank], amcs: list[AssetManagementCompany]):
        self.banks = banks
        self.amcs = amcs
        self.bank_rows: list[dict[str, Any]] = []
        self.amc_rows: list[dict[str, Any]] = []
        self.amc_recovered = 0.0  # cash recovered by AMCs up to the last recorded quarter
        self.amc_face_in = 0.0  # NPL face AMCs bought or took in carve-outs, likewise

    def record(self) -> None:
        """Append this quarter's rows."""
        self.bank_rows.extend(bank.record() for bank in self.banks)
        self.amc_rows.extend(amc.record() for amc in self.amcs)
        self.amc_recovered, self.amc_face_in = self._amc_totals()

    def _amc_totals(self) -> tuple[float, float]:
        flows = [amc.flows for amc in self.amcs]
        recovered = self.amc_recovered + sum(f["recoveries"] for f in flows)
        face_in = self.amc_face_in + sum(f["face_bought"] + f["face_carved_out"] for f in flows)
        return recovered, face_in

    def amc_recovery_to_date(self) -> float:
        """AMCs' cumulative cash recovered / cumulative face disposed (acquired, and since
        resolved or written off), as the AMCs reported it (facts: amc-recovery-2006); NaN
        before they have disposed of anything."""
        recovered, face_in = self._amc_totals()
        disposed = face_in - sum(amc.npl_face for amc in self.amcs)
        return recovered / disposed if disposed > 1e-9 else float("nan")

    def bank_frame(self) -> pd.DataFrame:
        """``banks.parquet``: one row per bank and quarter."""
        return pd.DataFrame(self.bank_rows)

    def amc_frame(self) -> pd.DataFrame:
        """``amcs.parquet``: one row per AMC and quarter."""
        return pd.DataFrame(self.amc_rows)


def deal_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``deals.parquet``: one row per issued deal."""
    return pd.DataFrame(rows, columns=DEAL_COLUMNS)
