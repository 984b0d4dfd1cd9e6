#!/usr/bin/python3
"""Reference for test_cond_exp_grazing (tests/test_neurons.c): iaf_cond_exp (NEST defaults) at
rest receives at t = 10 ms an inhibitory conductance jump of 2000 nS and an excitatory one of w nS.
For the w below, V_m rises just above V_th = -55 mV for a few microseconds (shorter than the
engine's 0.05 ms ODE step) or peaks just below it. Integrated with scipy's DOP853 (rtol 1e-13,
steps of at most 1e-5 ms so that no crossing hides inside a step), the first upward crossing of
V_th located on the dense output by brentq. Prints w, the peak V_m and its time, and the crossing
time (nan when none)."""
import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

g_L, C_m, E_L, E_ex, E_in, V_th = 16.6667, 250.0, -70.0, 0.0, -85.0, -55.0
tau_ex, tau_in, g_in0, t0 = 0.2, 2.0, 2000.0, 10.0


def run(w):
    def f(t, y):
        s = t - t0
        ge, gi = w * np.exp(-s / tau_ex), g_in0 * np.exp(-s / tau_in)
        return [(-g_L * (y[0] - E_L) - ge * (y[0] - E_ex) - gi * (y[0] - E_in)) / C_m]
    sol = solve_ivp(f, (t0, t0 + 0.5), [E_L], method='DOP853', rtol=1e-13, atol=1e-12, max_step=1e-5,
                    dense_output=True)
    ts = sol.t
    v = sol.y[0]
    k = int(np.argmax(v))
    peak_t = brentq(lambda t: f(t, sol.sol(t))[0], ts[max(k - 1, 0)], ts[min(k + 1, len(ts) - 1)], xtol=1e-15)
    peak = float(sol.sol(peak_t)[0])
    cross = float('nan')
    up = np.nonzero((v[:-1] < V_th) & (v[1:] >= V_th))[0]
    if len(up):
        i = up[0]
        cross = brentq(lambda t: sol.sol(t)[0] - V_th, ts[i], ts[i + 1], xtol=1e-15)
    return peak, peak_t, cross


# the weights whose peaks lie 0.01 mV and 0.001 mV above V_th (fresh-user trial 10 found both
# spikes missed) and about 0.001 mV below it (peak V_m is linear in w here: 0.00994 mV per nS)
for w in (1833.762642, 1832.857496, 1832.656):
    peak, peak_t, cross = run(w)
    print("w %.6f nS: peak V_m %.7f mV at %.9f ms, crossing at %.12f ms" % (w, peak, peak_t, cross))
