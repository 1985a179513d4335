import hashlib
import http.server
import threading
from functools import partial

import pytest

from ganforge.download import RemoteFile, cache_root, fetch
from ganforge.errors import DataError

PAYLOAD = b"ganforge test payload " * 1000


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        if self.path == "/truncated.bin":  # promises more bytes than it sends
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD) * 2))
            self.end_headers()
            self.wfile.write(PAYLOAD)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "file.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_downloads_verifies_and_reuses(server, tmp_path):
    remote = RemoteFile("file.bin", [f"{server}/file.bin"], sha256=hashlib.sha256(PAYLOAD).hexdigest())
    path = fetch(remote, tmp_path / "cache", progress=False)
    assert path.read_bytes() == PAYLOAD
    assert fetch(remote, tmp_path / "cache", progress=False) == path  # cached: no second download
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["file.bin"]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    remote = RemoteFile("file.bin", [f"{server}/file.bin"], md5="0" * 32)
    with pytest.raises(DataError, match="checksum mismatch.*put it at"):
        fetch(remote, tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_falls_back_to_mirror(server, tmp_path):
    remote = RemoteFile("file.bin", [f"{server}/missing.bin", f"{server}/file.bin"],
                        md5=hashlib.md5(PAYLOAD).hexdigest())
    assert fetch(remote, tmp_path, progress=False).read_bytes() == PAYLOAD


def test_connection_refused_names_file_and_place(tmp_path):
    remote = RemoteFile("file.bin", ["http://127.0.0.1:9/file.bin"], md5="0" * 32)
    with pytest.raises(DataError, match=r"could not download file\.bin .*put it at .*file\.bin"):
        fetch(remote, tmp_path, progress=False)


def test_interrupted_transfer_is_not_kept(server, tmp_path):
    remote = RemoteFile("t.bin", [f"{server}/truncated.bin"])
    with pytest.raises(DataError, match="connection closed"):
        fetch(remote, tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_corrupt_cached_file_is_reported(tmp_path):
    (tmp_path / "file.bin").write_bytes(b"junk")
    remote = RemoteFile("file.bin", ["http://127.0.0.1:9/file.bin"], md5=hashlib.md5(PAYLOAD).hexdigest())
    with pytest.raises(DataError, match="delete it"):
        fetch(remote, tmp_path, progress=False)


def test_cache_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
