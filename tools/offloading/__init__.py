"""MEC task offloading: the spec's cost model, scorer, scenario generator and solvers."""
