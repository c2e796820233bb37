"""Container images built on this machine, without a registry or a container engine: a Debian
bookworm root filesystem from Debian's packages (debootstrap), Python packages from PyPI, written
as image archives that containerd's own import takes (`ctr images import`)."""
