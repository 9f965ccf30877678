#!/usr/bin/env bash
# Installs everything ogi needs to build, test and benchmark on Debian 12.
# Idempotent, and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config libopenblas-dev libjansson-dev
          libpcre2-dev libutf8proc-dev python3-onnx python3-numpy clang-format)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# ONNX Runtime 1.30 (comparison benchmarks and the optional ort backend) comes
# from npm: the library from onnxruntime-node, the C headers from
# com.github.asus4.onnxruntime (ORT 1.29 API, compatible). `npm pack` runs no
# install scripts. ogi builds and passes its tests without it.
fetch_npm() { # name version destination
    local name=$1 version=$2 dest=$3 tmp
    tmp=$(mktemp -d)
    if (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null 2>&1); then
        rm -rf "$dest" && mkdir -p "$dest" && tar -xzf "$tmp"/*.tgz -C "$dest"
    else
        echo "setup: warning: could not fetch $name@$version from npm;" \
             "ONNX Runtime comparisons are disabled" >&2
    fi
    rm -rf "$tmp"
}
if [ ! -f deps/onnxruntime/.complete ]; then
    fetch_npm onnxruntime-node 1.30.0 deps/npm/onnxruntime-node
    fetch_npm com.github.asus4.onnxruntime 0.4.9 deps/npm/onnxruntime-headers
    lib=deps/npm/onnxruntime-node/package/bin/napi-v6/linux/x64/libonnxruntime.so.1
    hdr="deps/npm/onnxruntime-headers/package/Plugins/iOS~/onnxruntime.xcframework"
    hdr="$hdr/ios-arm64/onnxruntime.framework/Headers"
    if [ -f "$lib" ] && [ -d "$hdr" ]; then
        rm -rf deps/onnxruntime && mkdir -p deps/onnxruntime/lib deps/onnxruntime/include
        cp "$lib" deps/onnxruntime/lib/
        ln -sf libonnxruntime.so.1 deps/onnxruntime/lib/libonnxruntime.so
        cp "$hdr"/*.h deps/onnxruntime/include/
        touch deps/onnxruntime/.complete
    fi
    rm -rf deps/npm
fi
