"""The local cluster's real node: kubelet, containerd, runc, the CNI plugins, kube-proxy and
CoreDNS, built from their Go modules and run as host processes inside a network namespace the
project creates (no route out of it). One module per component; node.py starts and stops them
in order, cleanup.py finds what a killed run left."""
