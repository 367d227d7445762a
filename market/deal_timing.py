"""When a securitisation's steps happen: debtor notice, closing and legal final maturity, from the
regime and the deal specification (one rule for the deal desk and for an originator's estimate
of what investors pay)."""

from __future__ import annotations

from typing import Any


def notice_quarters(regime: Any, spec: Any) -> int:
    """Quarters until the debtors are bound by notice of a transfer."""
    if regime.debtor_notice == "individual":
        return max(regime.notice_delay_q, spec.individual_notice_min_delay_q)
    return regime.notice_delay_q


def closing_lag_q(regime: Any, spec: Any, borrowers: float) -> int:
    """Quarters from cut-off to closing: debtor notice, and approval of a bulk transfer of a pool
    of ``borrowers``."""
    lag = 1 + notice_quarters(regime, spec)
    if regime.bulk_transfer_to_amc_only and borrowers >= regime.bulk_threshold:
        lag += spec.bulk_approval_delay_q
    return lag


def collection_horizon_q(regime: Any, spec: Any, borrowers: float = 0.0) -> int:
    """Quarters from cut-off to the deal's legal final maturity, when the trust sells (or, where
    deals do not provide for a sale, writes off) what its pool has not yet collected."""
    return closing_lag_q(regime, spec, borrowers) + spec.tenor_q
