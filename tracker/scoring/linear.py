"""Weighted L2 logistic regression with per-row offsets (scipy L-BFGS)."""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -35, 35)))


def fit_logistic(x, y, weights, offset, l2: float) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression with a fixed per-row offset in the log-odds (sklearn
    has no offsets): minimises sum w*logloss(offset + x.beta + b) + l2*|beta|^2/2, b free.
    The offsets let the text model learn around the config keywords instead of double
    counting them, and the category model learn around the text."""
    from scipy.optimize import minimize

    sign = np.where(y > 0, 1.0, -1.0)

    def loss(theta):
        beta, bias = theta[:-1], theta[-1]
        z = sign * (offset + x @ beta + bias)
        g = -weights * sign * sigmoid(-z)
        value = np.sum(weights * np.logaddexp(0, -z)) + 0.5 * l2 * beta @ beta
        return value, np.append(x.T @ g + l2 * beta, g.sum())

    start = np.zeros(x.shape[1] + 1)
    theta = minimize(loss, start, jac=True, method="L-BFGS-B",
                     options={"maxiter": 2000}).x
    return theta[:-1], float(theta[-1])


def balanced(y, weights) -> np.ndarray:
    """Per-row weights that give both classes the same total weight."""
    out = weights.astype(float).copy()
    for cls in (0, 1):
        mask = y == cls
        out[mask] *= len(y) / (2.0 * max(weights[mask].sum(), 1e-9))
    return out
