"""Traffic through a Serve Service while the release is upgraded and its pods fail: a Locust
load driver (load.py, locustfile.py), the scenarios (scenarios.py) and `make chaos` (__main__)."""
