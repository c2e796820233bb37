"""A local Kubernetes control plane with simulated nodes, for machines without a container engine.

Real: etcd, kube-apiserver (admission: Pod Security, CRD schemas and CEL, server-side apply),
kube-controller-manager (garbage collection, PV binding, token Secrets), kube-scheduler, and the
KubeRay operator as a host process with the RBAC it ships. Simulated: the nodes and everything a
kubelet would do. kwok marks scheduled pods Running and Ready without running a container: no
image is pulled, no command, probe or Ray process runs, no traffic flows between pods.

Every process listens on 127.0.0.1 (a real Ray head, where one is started, on its head pod's
loopback IP), simulated node and pod IPs are in 127.0.0.0/8, and the operator reaches Ray heads
through the cluster network proxy (network.py), which resolves Service names through the API and
dials loopback only: no address outside 127.0.0.0/8 is contacted.

One RayService can get a real Ray behind it (ray_head.py): a Ray head started on this machine
on its head pod's IP, with the pod's token, rayStartParams and app files, so that the operator
deploys the Serve config onto real Ray Serve and the Serve proxy answers.

    python -m cluster.local up [--state-dir DIR]    # start; kubeconfig in DIR/kubeconfig
    python -m cluster.local down [--state-dir DIR]  # stop every process, remove the state
"""
