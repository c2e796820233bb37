"""The image archives containerd imports, offline: the `docker save` layout (manifest, config
with the layers' diff IDs, uncompressed layer tarballs), and the serve layer's file list."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from images import archive, build, rootfs
from images.archive import ImageConfig


def test_an_archive_names_its_layers_by_their_digests(tmp_path: Path) -> None:
    tree = tmp_path / "root"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "hello").write_text("#!/bin/sh\necho hi\n")
    layer = tmp_path / "layer.tar"
    diff_id = archive.layer_from_tree(tree, layer)
    assert diff_id == hashlib.sha256(layer.read_bytes()).hexdigest()
    output = tmp_path / "image"
    archive.write_archive(output, "localhost/ray-platform/test:1", [layer],
                          ImageConfig(user="1000:100", entrypoint=("/bin/hello",)))
    streamed = archive.stream_archive(output)
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout.read())) as image:
        manifest = json.loads(image.extractfile("./manifest.json").read())
        config_bytes = image.extractfile("./" + manifest[0]["Config"]).read()
        stored = image.extractfile("./" + manifest[0]["Layers"][0]).read()
    assert streamed.wait() == 0
    # The layer is the same file, hard-linked: a layer two images share is stored once.
    assert (output / manifest[0]["Layers"][0]).stat().st_ino == layer.stat().st_ino
    assert manifest[0]["RepoTags"] == ["localhost/ray-platform/test:1"]
    assert manifest[0]["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
    config = json.loads(config_bytes)
    assert config["rootfs"]["diff_ids"] == [f"sha256:{diff_id}"]
    assert hashlib.sha256(stored).hexdigest() == diff_id
    assert config["config"]["User"] == "1000:100" and config["os"] == "linux"
    with tarfile.open(fileobj=io.BytesIO(stored)) as contents:
        member = contents.getmember("./bin/hello")
        assert member.uid == 0 and member.isfile()


def test_the_serve_layer_holds_what_was_added_and_whiteouts_for_what_went(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "opt" / "lib" / "old-1.0.dist-info").mkdir(parents=True)
    (base / "opt" / "lib" / "old-1.0.dist-info" / "RECORD").write_text("r")
    (base / "opt" / "lib" / "kept.py").write_text("x")
    upper = tmp_path / "upper"
    rootfs.copy_tree(base, upper)
    (upper / "opt" / "lib" / "new.py").write_text("y")
    (upper / "models").mkdir()
    assert build.layer_paths(base, upper) == ["./models", "./opt/lib/new.py"]
    # pip replacing a package: its old folder goes, one whiteout hides it (not one per file).
    import shutil
    shutil.rmtree(upper / "opt" / "lib" / "old-1.0.dist-info")
    (upper / "opt" / "lib" / "kept.py").unlink()
    (upper / "opt" / "lib" / "kept.py").write_text("changed")
    paths = build.layer_paths(base, upper)
    assert paths == ["./models", "./opt/lib/.wh.old-1.0.dist-info", "./opt/lib/kept.py",
                     "./opt/lib/new.py"]
    assert (upper / "opt" / "lib" / ".wh.old-1.0.dist-info").stat().st_size == 0


def test_constraints_drop_extras_and_keep_pins() -> None:
    text = build.constraints_of(build.SERVE_REQUIREMENTS).read_text()
    assert "ray==2.60.0" in text and "ray[" not in text and "torch==" in text
