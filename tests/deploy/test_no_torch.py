import subprocess
import sys


def test_deploy_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import stseg_deploy, stseg_deploy.cli.infer, stseg_deploy.cli.eval, stseg_deploy.pipeline, stseg_deploy.eval.evaluation\n"
        "import stseg_deploy.runtime, stseg_deploy.output.folder, stseg_kernels\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
