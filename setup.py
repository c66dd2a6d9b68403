"""DeepSpeech2 for MindSpore 2.10: LibriSpeech preparation, training, evaluation, export."""
from setuptools import find_packages, setup

setup(
    name="deepspeech2-mindspore",
    version="0.1.0",
    description="DeepSpeech2 on MindSpore 2.10 for the speech-recognition course lab",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["deepspeech2", "deepspeech2.*", "data_prep", "data_prep.*"]),
    package_data={"data_prep.corpus": ["data/*"], "deepspeech2": ["resources/*"], "deepspeech2.serving": ["static/*"],
                  "deepspeech2.model": ["kernels/*.cc", "kernels/*.h"]},
    include_package_data=True,
    install_requires=[
        "mindspore==2.10.0",
        "numpy>=1.24,<2",          # the mindspore 2.10 wheel is built against NumPy 1.x
        "pandas>=2.0,<3",          # pandas 3 needs numpy 2
        "scipy>=1.10",
        "soundfile>=0.12",
        "librosa>=0.10",
        "python-Levenshtein>=0.21",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "psutil>=5.9",
        "matplotlib>=3.7",
        "fastapi>=0.110,<1",       # ds2-serve (pydantic 2: no numpy constraint)
        "uvicorn[standard]>=0.29,<1",
        "python-multipart>=0.0.9,<1",
    ],
    extras_require={"test": ["pytest>=7", "jiwer>=3", "pocketsphinx>=5", "httpx>=0.27,<1", "selenium>=4.20,<5"], "baseline": ["pocketsphinx>=5"]},
    entry_points={
        "console_scripts": [
            "ds2-make-corpus = data_prep.corpus.make_corpus:main",
            "ds2-prepare-librispeech = data_prep.librispeech:main",
            "ds2-json-to-csv = data_prep.convert:json_to_csv_main",
            "ds2-csv-to-json = data_prep.convert:csv_to_json_main",
            "ds2-build-lm = deepspeech2.cli.build_lm:main",
            "ds2-tune-lm = deepspeech2.cli.tune_lm:main",
            "ds2-average = deepspeech2.cli.average:main",
            "ds2-train = deepspeech2.cli.train:main",
            "ds2-eval = deepspeech2.cli.evaluate:main",
            "ds2-export = deepspeech2.cli.export:main",
            "ds2-transcribe = deepspeech2.cli.transcribe:main",
            "ds2-bench = deepspeech2.cli.bench:main",
            "ds2-serve = deepspeech2.cli.serve:main",
        ]
    },
)
