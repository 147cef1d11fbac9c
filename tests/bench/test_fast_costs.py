"""shared/fast_costs.py: the break-even rule that bench/fast.py reports and mode=auto uses (pure Python)."""

from __future__ import annotations

import pytest

from shared.fast_costs import FastCosts, break_even_batch, choose_mode


def test_break_even_is_the_first_batch_where_fast_is_cheaper():
    costs = FastCosts(train_s=1800.0, apply_s=0.5, optimize_s=300.5)  # saving 300 s per image
    n = break_even_batch(costs)
    assert n == 7  # 1800 / 300 = 6: at 6 images they tie, so fast first wins at 7
    assert costs.fast_s(n) < costs.optimize_total_s(n)
    assert costs.fast_s(n - 1) >= costs.optimize_total_s(n - 1)
    assert choose_mode(6, costs)[0] == "optimize" and choose_mode(7, costs)[0] == "fast"


@pytest.mark.parametrize("train_s, apply_s, optimize_s", [(1000.0, 0.3, 97.0), (5.0, 1.0, 1.5), (1e4, 2.0, 2.5)])
def test_break_even_agrees_with_brute_force(train_s, apply_s, optimize_s):
    costs = FastCosts(train_s, apply_s, optimize_s)
    brute = next(n for n in range(1, 10**6) if costs.fast_s(n) < costs.optimize_total_s(n))
    assert break_even_batch(costs) == brute


def test_edges_an_existing_model_and_a_network_no_cheaper_than_optimizing():
    assert break_even_batch(FastCosts(0.0, 0.5, 100.0)) == 1
    assert break_even_batch(FastCosts(100.0, 2.0, 2.0)) is None
    mode, reason = choose_mode(1000, FastCosts(100.0, 3.0, 2.0))
    assert mode == "optimize" and "break-even at no batch size" in reason


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "10", True])
def test_bad_costs_are_refused(bad):
    with pytest.raises(ValueError, match="train_s"):
        FastCosts(bad, 1.0, 2.0)
    with pytest.raises(ValueError, match="n must be"):
        choose_mode(0, FastCosts(1.0, 1.0, 2.0))
