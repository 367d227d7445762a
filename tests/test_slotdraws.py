"""Draws addressed by loan slot: uniform, independent across slots, lanes and keys, and the same
for a slot whichever other slots are drawn (common random numbers)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from nplsim.market.slotdraws import new_key, slot_uniforms


def test_the_generator_is_splitmix64():
    # the first outputs of SplitMix64 from state 0 (Vigna's splitmix64.c), top 53 bits
    first = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    expected = [(x >> 11) / 2**53 for x in first]
    assert slot_uniforms(np.uint64(0), np.arange(3)).tolist() == expected


def test_draws_are_uniform_and_in_range():
    u = slot_uniforms(np.uint64(12345), np.arange(200_000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    counts = np.bincount((u * 100).astype(int), minlength=100)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_neighbouring_slots_lanes_and_keys_are_uncorrelated():
    slots = np.arange(100_000)
    key = np.uint64(987654321)
    a = slot_uniforms(key, slots, lane=0, lanes=2)
    b = slot_uniforms(key, slots, lane=1, lanes=2)
    c = slot_uniforms(key + np.uint64(1), slots, lane=0, lanes=2)
    bound = 4 / np.sqrt(slots.size)
    for x, y in ((a, b), (a, c), (a[:-1], a[1:])):
        assert abs(np.corrcoef(x, y)[0, 1]) < bound


def test_a_slot_gets_the_same_draw_whichever_slots_are_drawn():
    key = new_key(np.random.default_rng(3))
    everything = slot_uniforms(key, np.arange(10_000), lane=1, lanes=2)
    some = np.sort(np.random.default_rng(4).choice(10_000, 700, replace=False))
    assert np.array_equal(slot_uniforms(key, some, lane=1, lanes=2), everything[some])


def test_keys_come_from_the_stream_and_repeat_with_its_seed():
    keys = [new_key(np.random.default_rng(7)) for _ in range(2)]
    assert keys[0] == keys[1] and keys[0].dtype == np.uint64
    assert new_key(np.random.default_rng(8)) != keys[0]


def test_a_single_slot_draws_without_overflow_warnings():
    key = np.uint64(2**64 - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = slot_uniforms(key, 5)
        as_array = slot_uniforms(key, np.array([5]))
    assert float(single) == float(as_array[0])
