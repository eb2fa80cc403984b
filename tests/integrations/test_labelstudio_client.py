"""Label Studio's side of the ML backend: the labelling config, tokens, image URLs and downloads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.fake_label_studio import CONFIG, LEGACY_TOKEN, PAT, FakeLabelStudio
from labelloop.errors import InvalidInputError, UpstreamError
from labelloop.integrations.labelstudio import LabelStudioClient, parse_label_config

pytest.importorskip("httpx")


@pytest.fixture
def fake() -> Iterator[FakeLabelStudio]:
    server = FakeLabelStudio(files={"/data/upload/1/ab12cd34-a.png": b"\x89PNG fake bytes"}).start()
    yield server
    server.stop()


def test_the_config_names_each_control_its_object_and_labels() -> None:
    config = parse_label_config(CONFIG.replace("</View>", """
      <PolygonLabels name="outline" toName="image"><Label value="circle"/></PolygonLabels>
      <Choices name="quality" toName="image"><Choice value="good"/></Choices></View>"""))
    assert [(c.name, c.to_name, c.type) for c in config.controls] == [
        ("label", "image", "rectanglelabels"), ("outline", "image", "polygonlabels")]
    assert config.labels == ["circle", "square", "hexagon"]
    assert config.control_for("polygonlabels").name == "outline"
    assert config.control_for("brushlabels") is None


@pytest.mark.parametrize(("xml", "says"), [
    ("", "empty"),
    ("<View><Image name='image'", "not valid XML"),
    ("<View><Image name='image' value='$image'/><Choices name='c' toName='image'/></View>", "no RectangleLabels"),
    ("<View><RectangleLabels name='label'><Label value='a'/></RectangleLabels></View>", "'name' and 'toName'"),
    ("<!DOCTYPE x [<!ENTITY a 'aaaa'>]><View>&a;</View>", "not valid XML"),
])
def test_a_bad_config_says_what_was_expected(xml: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        parse_label_config(xml)


def test_a_legacy_token_is_sent_as_is_and_a_personal_token_is_exchanged(fake: FakeLabelStudio) -> None:
    assert LabelStudioClient(fake.url, LEGACY_TOKEN).auth_header() == {"Authorization": f"Token {LEGACY_TOKEN}"}
    pat = LabelStudioClient(fake.url, PAT)
    header = pat.auth_header()
    assert header["Authorization"].removeprefix("Bearer ") in fake.issued
    assert pat.auth_header() == header  # reused while it is fresh
    assert len(fake.seen("/api/token/refresh/")) == 1
    with pytest.raises(UpstreamError, match="refused the token"):
        LabelStudioClient(fake.url, PAT[:-3] + "xyz").auth_header()


def test_image_urls_resolve_against_label_studio() -> None:
    ls = LabelStudioClient("http://ls.example:8080/", "t")
    assert ls.resolve("/data/upload/3/ab12cd34-x.jpg") == "http://ls.example:8080/data/upload/3/ab12cd34-x.jpg"
    assert ls.resolve("/data/local-files/?d=img/x.jpg") == "http://ls.example:8080/data/local-files/?d=img/x.jpg"
    assert ls.resolve("https://cdn.example/x.jpg") == "https://cdn.example/x.jpg"
    assert ls.resolve("s3://bucket/x.jpg", task_id=7).startswith("http://ls.example:8080/tasks/7/resolve/?fileuri=")
    with pytest.raises(InvalidInputError, match="not a URL Label Studio serves"):
        ls.resolve("x.jpg")
    with pytest.raises(InvalidInputError, match="not an http"):
        LabelStudioClient("ftp://ls.example", "t")


def test_download_sends_the_token_to_label_studio_only(fake: FakeLabelStudio, tmp_path: Path) -> None:
    ls = LabelStudioClient(fake.url, LEGACY_TOKEN)
    got = ls.download("/data/upload/1/ab12cd34-a.png", tmp_path / "a.png", limit=1000)
    assert got.read_bytes() == b"\x89PNG fake bytes"
    assert fake.seen("/data/upload/")[0]["authorization"] == f"Token {LEGACY_TOKEN}"
    # the same server under another host name is another host: no token goes there
    other = fake.url.replace("127.0.0.1", "localhost")
    with pytest.raises(UpstreamError, match=r"localhost.*401"):
        ls.download(other + "/data/upload/1/ab12cd34-a.png", tmp_path / "b.png", limit=1000)
    assert "authorization" not in fake.seen("/data/upload/")[-1]
    assert not (tmp_path / "b.png").exists() and not list(tmp_path.glob("*.part"))


def test_a_failed_download_says_which_url_and_why(fake: FakeLabelStudio, tmp_path: Path) -> None:
    ls = LabelStudioClient(fake.url, LEGACY_TOKEN)
    with pytest.raises(UpstreamError, match=r"/data/upload/1/gone.png: 404"):
        ls.download("/data/upload/1/gone.png", tmp_path / "x", limit=1000)
    with pytest.raises(InvalidInputError, match="over 5 bytes"):
        ls.download("/data/upload/1/ab12cd34-a.png", tmp_path / "x", limit=5)
    fake.stop()
    with pytest.raises(UpstreamError, match="cannot reach|ConnectError"):
        LabelStudioClient(fake.url, LEGACY_TOKEN).tasks(1)
    assert not list(tmp_path.iterdir())
