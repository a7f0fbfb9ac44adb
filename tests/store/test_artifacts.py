from llmos.store.artifacts import ArtifactStore


def test_put_dir_and_materialize_round_trip(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("alpha")  # same content: one blob
    store = ArtifactStore(tmp_path / "artifacts")
    manifest = store.put_dir(src)
    assert set(manifest) == {"a.txt", "sub/b.txt"}
    assert len(store.files()) == 1
    dest = store.materialize(manifest, tmp_path / "out")
    assert (dest / "sub" / "b.txt").read_text() == "alpha"
