"""``fit=digits`` over HTTP with the real model: every digit of a number found, denoised, put back."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import ClientFactory
from tests.images import decode_png, encode, page_with_digit, page_with_number, psnr

Digits = npt.NDArray[np.uint8]


def _post(client: TestClient, page: npt.NDArray[np.uint8], **params: str) -> tuple[int, dict[str, str], bytes]:
    data = encode(Image.fromarray(page), "PNG")
    response = client.post("/denoise", params=params, content=data, headers={"Content-Type": "image/png"})
    return response.status_code, dict(response.headers), response.content


def _boxes(header: str) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in box.split(",")) for box in header.split(";")]


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    overlap = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return overlap / (aw * ah + bw * bh - overlap)


def test_every_digit_of_a_number_is_found_in_reading_order_and_comes_back_clean(
    client: TestClient, digits: Digits
) -> None:
    # Four digits, the middle two touching (no gap between their ink).
    page, clean, truth = page_with_number(digits[:4], gaps=[10, 0, 6])
    status, headers, body = _post(client, page, fit="digits", size="original")
    assert status == 200, body
    assert headers["x-digit-count"] == "4"
    found = _boxes(headers["x-digit-boxes"])
    assert [round(_iou(f, t), 2) >= 0.5 for f, t in zip(found, truth, strict=True)] == [True] * 4, (found, truth)
    answer = np.asarray(decode_png(body))
    assert answer.shape == page.shape
    x0, y0 = truth[0][0], min(t[1] for t in truth)
    x1, y1 = truth[-1][0] + truth[-1][2], max(t[1] + t[3] for t in truth)
    region = (slice(y0, y1), slice(x0, x1))
    assert psnr(clean[region], answer[region]) > psnr(clean[region], page[region]) + 6
    # fit=digit frames the number as one digit: far worse.
    _, _, one = _post(client, page, fit="digit", size="original")
    assert psnr(clean[region], np.asarray(decode_png(one))[region]) < psnr(clean[region], answer[region]) - 3


def test_size_28_answers_the_digits_side_by_side_and_json_each_digit(client: TestClient, digits: Digits) -> None:
    page, _, truth = page_with_number(digits[4:7], gaps=[12, 12])
    status, headers, body = _post(client, page, fit="digits")
    assert status == 200, body
    tiles = np.asarray(decode_png(body))
    assert tiles.shape == (28, 3 * 28)
    for index in range(3):  # each tile a framed digit: white margins, dark ink in the middle
        tile = tiles[:, 28 * index : 28 * (index + 1)]
        assert tile[:3].min() > 200
        assert tile[8:20, 8:20].min() < 60
    data = encode(Image.fromarray(page), "PNG")
    result = client.post("/denoise/json", params={"fit": "digits"}, content=data, headers={"Content-Type": "image/png"})
    found = result.json()["digits"]
    assert [d["box"]["x"] for d in found] == sorted(d["box"]["x"] for d in found)
    assert [(d["box"]["x"], d["box"]["y"], d["box"]["width"], d["box"]["height"]) for d in found] == _boxes(
        headers["x-digit-boxes"]
    )
    # The answer's figures summarise the digits': the mean error, the highest score, any flag.
    body_json = result.json()
    errors = [d["reconstruction_error"] for d in found]
    assert (
        body_json["reconstruction_error"] == np.float32(np.mean(errors))
        or abs(body_json["reconstruction_error"] - np.mean(errors)) < 1e-9
    )
    assert body_json["anomaly_score"] == max(d["anomaly_score"] for d in found)
    assert body_json["anomaly"] == any(d["anomaly"] for d in found)
    assert body_json["digit_box"] is None
    assert len(truth) == len(found)


def test_two_lines_are_read_top_to_bottom(client: TestClient, digits: Digits) -> None:
    top, _, _ = page_with_number(digits[:2], gaps=[15], seed=1)
    bottom, _, _ = page_with_number(digits[2:5], gaps=[15, 15], seed=2)
    width = max(top.shape[1], bottom.shape[1])
    page = np.full((top.shape[0] + bottom.shape[0], width), 255, np.uint8)
    page[: top.shape[0], : top.shape[1]] = top
    page[top.shape[0] :, : bottom.shape[1]] = bottom
    status, headers, body = _post(client, page, fit="digits")
    assert status == 200, body
    found = _boxes(headers["x-digit-boxes"])
    assert len(found) == 5
    assert all(box[1] < top.shape[0] for box in found[:2])
    assert all(box[1] >= top.shape[0] - 10 for box in found[2:])
    assert found[2][0] < found[3][0] < found[4][0]


def test_one_model_call_for_all_the_digits_of_an_upload(make_client: ClientFactory, digits: Digits) -> None:
    page, _, _ = page_with_number(digits[:5], gaps=[8, 8, 8, 8])
    with make_client() as client:
        status, headers, _ = _post(client, page, fit="digits")
        assert status == 200
        metrics = client.get("/metrics").text
    sizes = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("inference_batch_size_")
    }
    # The example answer at startup made one call of 1; this upload one call of 5.
    assert sizes["inference_batch_size_count"] == 2
    assert sizes["inference_batch_size_sum"] == 1 + int(headers["x-digit-count"]) == 6


def test_a_single_digit_answers_as_fit_digit(client: TestClient, digits: Digits) -> None:
    page, _ = page_with_digit(digits[3], sigma=0.3)
    for size in ("28", "original"):
        _, one, digit = _post(client, page, fit="digit", size=size)
        _, many, every = _post(client, page, fit="digits", size=size)
        _, auto, automatic = _post(client, page, fit="auto", size=size)
        assert every == digit == automatic
        assert many["x-digit-box"] == one["x-digit-box"] == auto["x-digit-box"]
        assert many["x-digit-count"] == "1"


def test_fit_auto_reads_a_number_as_digits(client: TestClient, digits: Digits) -> None:
    page, _, _ = page_with_number(digits[:3], gaps=[10, 10])
    _, headers, body = _post(client, page, fit="auto", size="original")
    _, _, every = _post(client, page, fit="digits", size="original")
    assert headers["x-digit-count"] == "3"
    assert body == every


def test_past_max_digits_and_on_a_blank_page_the_answer_is_422(make_client: ClientFactory, digits: Digits) -> None:
    page, _, _ = page_with_number(digits[:4], gaps=[10, 10, 10])
    blank = np.full((200, 300), 255, np.uint8)
    with make_client(max_digits=3) as client:
        status, _, body = _post(client, page, fit="digits")
        assert status == 422
        problem = json.loads(body)
        assert problem["code"] == "too_many_digits"
        assert "4 digits found" in problem["detail"]
        assert "the limit is 3" in problem["detail"]
        status, _, body = _post(client, blank, fit="digits")
        assert status == 422
        assert json.loads(body)["code"] == "no_digit_found"
        # fit=auto never refuses: past the limit it stretches the page.
        status, headers, _ = _post(client, page, fit="auto")
        assert status == 200
        assert "x-digit-count" not in headers
        assert (_post(client, digits[0], fit="digits")[0]) == 200  # and the next request is served


def test_the_batch_route_takes_fit_digits(client: TestClient, digits: Digits) -> None:
    number, _, _ = page_with_number(digits[:3], gaps=[10, 10])
    single, _ = page_with_digit(digits[5])
    files = [
        ("files", (name, encode(Image.fromarray(p), "PNG"), "image/png")) for name, p in (("n", number), ("s", single))
    ]
    response = client.post("/denoise/batch", params={"fit": "digits", "size": "original"}, files=files)
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert len(first["result"]["digits"]) == 3
    assert len(second["result"]["digits"]) == 1
    assert (first["result"]["output"]["width"], first["result"]["output"]["height"]) == (
        number.shape[1],
        number.shape[0],
    )


def test_a_page_of_many_marks_is_refused_not_framed_mark_by_mark(client: TestClient) -> None:
    # 20 x 15 dots, each digit-sized: far past MAX_DIGITS (32); fit=auto stretches the page instead.
    page = np.full((600, 800), 255, np.uint8)
    for row in range(15):
        for col in range(20):
            page[20 + 40 * row : 40 + 40 * row, 20 + 40 * col : 34 + 40 * col] = 0
    status, _, body = _post(client, page, fit="digits")
    assert status == 422
    assert json.loads(body)["code"] == "too_many_digits"
    assert _post(client, page, fit="auto")[0] == 200
