"""ds2-serve end to end (slow tier): the page in headless Chromium, and a bounded load test."""
from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile

from test_serving import free_port, post_file, start_server

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
CLIENTS, REQUESTS_EACH = 20, 5


@pytest.fixture(scope="module")
def server(tiny_stream_checkpoint):
    port = free_port()
    proc = start_server(tiny_stream_checkpoint, port)
    yield proc, port
    proc.terminate()
    proc.communicate(timeout=60)


def _browser(profile_dir):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile_dir}", "--window-size=1100,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium/chromedriver not installed "
                    "(scripts/setup_env.sh installs them as root: apt-get install chromium chromium-driver)")
def test_page_transcribes_an_uploaded_wav(server, speech_clips, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, port = server
    audio, rate = soundfile.read(speech_clips["greek"][0])
    wav = tmp_path / "greek.wav"
    soundfile.write(wav, audio, rate, subtype="PCM_16")
    expected = post_file(port, "greek.wav", wav.read_bytes(), "audio/wav")[1]
    driver = _browser(tmp_path / "profile")
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 30).until(lambda d: "parameters" in d.find_element(By.ID, "model-info").text)
        upload = driver.find_element(By.ID, "file-input")
        driver.execute_script("arguments[0].style.display = 'block';", upload)
        upload.send_keys(str(wav))
        WebDriverWait(driver, 120).until(lambda d: d.find_element(By.ID, "transcript").text.strip())
        assert driver.find_element(By.ID, "transcript").text == (expected["text"] or "(no speech recognised)")
        assert float(driver.find_element(By.ID, "rtf").text) > 0
        assert driver.find_element(By.ID, "error").get_attribute("hidden") is not None
        driver.execute_script("arguments[0].style.display = 'none';", upload)
        screenshot = os.environ.get("DS2_SERVE_SCREENSHOT") or str(tmp_path / "serve.png")
        driver.save_screenshot(screenshot)
        assert os.path.getsize(screenshot) > 10_000
    finally:
        driver.quit()


def _peak_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    import psutil

    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.05)


def test_load_20_clients_x_5_requests(server, speech_clips):
    proc, port = server
    data = speech_clips["canoe"][0].read_bytes()
    expected = post_file(port, "canoe.flac", data)[1]["text"]

    def client(_):
        times = []
        for _ in range(REQUESTS_EACH):
            t0 = time.perf_counter()
            status, body = post_file(port, "canoe.flac", data)
            times.append(time.perf_counter() - t0)
            assert status == 200 and body["text"] == expected, body
        return times

    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=_peak_rss, args=(proc.pid, stop, peak))
    watcher.start()
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            latencies = np.concatenate([np.array(t) for t in pool.map(client, range(CLIENTS))])
    finally:
        stop.set()
        watcher.join()
    wall = time.perf_counter() - t0
    assert latencies.size == CLIENTS * REQUESTS_EACH
    assert proc.poll() is None
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=10).status == 200
    print(f"\nload: {CLIENTS} clients x {REQUESTS_EACH} requests of a {soundfile.info(speech_clips['canoe'][0]).duration:.2f}-s "
          f"clip in {wall:.1f} s ({latencies.size / wall:.1f} req/s); latency p50 {np.percentile(latencies, 50):.2f} s, "
          f"p95 {np.percentile(latencies, 95):.2f} s, max {latencies.max():.2f} s; server peak RSS {peak[0] / 2**20:.0f} MiB")
