// libtorch_timer.cpp - time a traced TorchScript model with libtorch, the
// peer nncc is measured against (the "C++ inference" way to run a .pt).
//
// Usage: libtorch_timer MODEL.pt IN.npy... [--runs N] [--warmup W]
//                       [--threads T] [--out-dir DIR] [--times]
//
// Loads the model with torch::jit::load, reads the inputs (little-endian
// C-order .npy of float32, float64, int64, int32 or bool, in forward()
// order), sets at::set_num_threads(T) (1 by default), and under
// torch::NoGradGuard runs forward() W times untimed, then N times timed
// one by one. It prints the same line as `nncc run --bench`:
//   latency_ms min=X median=Y max=Z runs=N threads=T
// and, with --times, every timed call's milliseconds first:
//   times_ms t1 t2 ...
// With --out-dir it also writes the outputs of the first call as
// DIR/output_<j>.npy (tuples and lists flattened; float32/int64/bool).
//
// Build (see bench/bench.sh):
//   g++ -O2 -std=c++17 libtorch_timer.cpp -I/usr/include/torch/csrc/api/include \
//       -ltorch -ltorch_cpu -lc10 -o libtorch_timer
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The dtype and shape in a .npy header dict, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }
struct NpyHeader {
  std::string descr;           // '<f4', '<i8', '|b1', ...
  bool fortran = false;        // column-major data (not supported)
  std::vector<int64_t> shape;  // () for a 0-dim array
};

std::string dict_value(const std::string &dict, const std::string &key) {
  size_t k = dict.find("'" + key + "'");
  if (k == std::string::npos) throw std::runtime_error("npy: no " + key);
  size_t colon = dict.find(':', k);
  if (colon == std::string::npos) throw std::runtime_error("npy: bad header");
  size_t start = dict.find_first_not_of(' ', colon + 1);
  if (start == std::string::npos) throw std::runtime_error("npy: bad header");
  size_t end;
  if (dict[start] == '(') {
    end = dict.find(')', start);
    if (end == std::string::npos) throw std::runtime_error("npy: bad shape");
    return dict.substr(start, end - start + 1);
  }
  end = dict.find_first_of(",}", start);
  if (end == std::string::npos) throw std::runtime_error("npy: bad header");
  return dict.substr(start, end - start);
}

torch::Tensor read_npy(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::string data((std::istreambuf_iterator<char>(f)),
                   std::istreambuf_iterator<char>());
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0)
    throw std::runtime_error(path + ": not a .npy file");
  int major = (unsigned char)data[6];
  size_t hlen, hstart;
  if (major == 1) {
    hlen = (unsigned char)data[8] | ((unsigned char)data[9] << 8);
    hstart = 10;
  } else {
    if (data.size() < 12) throw std::runtime_error(path + ": truncated");
    hlen = 0;
    for (int i = 3; i >= 0; i--) hlen = (hlen << 8) | (unsigned char)data[8 + i];
    hstart = 12;
  }
  if (hstart + hlen > data.size()) throw std::runtime_error(path + ": truncated");
  std::string dict = data.substr(hstart, hlen);
  NpyHeader h;
  h.descr = dict_value(dict, "descr");
  h.descr = h.descr.substr(1, h.descr.size() - 2);  // strip the quotes
  h.fortran = dict_value(dict, "fortran_order") == "True";
  std::string shape = dict_value(dict, "shape");
  std::stringstream ss(shape.substr(1, shape.size() - 2));
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;
    h.shape.push_back(std::stoll(item));
  }
  if (h.fortran) throw std::runtime_error(path + ": fortran order");
  torch::ScalarType st;
  size_t elem;
  if (h.descr == "<f4") st = torch::kFloat32, elem = 4;
  else if (h.descr == "<f8") st = torch::kFloat64, elem = 8;
  else if (h.descr == "<i8") st = torch::kInt64, elem = 8;
  else if (h.descr == "<i4") st = torch::kInt32, elem = 4;
  else if (h.descr == "|b1") st = torch::kBool, elem = 1;
  else throw std::runtime_error(path + ": unsupported dtype " + h.descr);
  int64_t n = 1;
  for (int64_t d : h.shape) n *= d;
  size_t body = hstart + hlen;
  if (data.size() - body < (size_t)n * elem)
    throw std::runtime_error(path + ": truncated data");
  torch::Tensor t = torch::empty(h.shape, torch::TensorOptions().dtype(st));
  std::memcpy(t.data_ptr(), data.data() + body, (size_t)n * elem);
  return t;
}

void write_npy(const std::string &path, torch::Tensor t) {
  t = t.contiguous();
  std::string descr;
  if (t.scalar_type() == torch::kFloat32) descr = "<f4";
  else if (t.scalar_type() == torch::kInt64) descr = "<i8";
  else if (t.scalar_type() == torch::kBool) descr = "|b1";
  else {
    t = t.to(torch::kFloat32);
    descr = "<f4";
  }
  std::string shape = "(";
  for (int64_t d : t.sizes()) shape += std::to_string(d) + ", ";
  if (t.dim() > 1) shape.resize(shape.size() - 1), shape.back() = ')';
  else if (t.dim() == 1) shape.resize(shape.size() - 1), shape.back() = ',', shape += ")";
  else shape += ")";
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " +
                     shape + ", }";
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot write " + path);
  f.write("\x93NUMPY\x01\x00", 8);
  char len[2] = {(char)(dict.size() & 0xff), (char)(dict.size() >> 8)};
  f.write(len, 2);
  f << dict;
  f.write((const char *)t.data_ptr(), t.numel() * t.element_size());
}

void flatten(const c10::IValue &v, std::vector<torch::Tensor> &out) {
  if (v.isTensor()) out.push_back(v.toTensor());
  else if (v.isTuple())
    for (const auto &e : v.toTuple()->elements()) flatten(e, out);
  else if (v.isList())
    for (const auto &e : v.toList()) flatten(e, out);
  else throw std::runtime_error("unexpected output type");
}

}  // namespace

int main(int argc, char **argv) {
  std::string model, out_dir;
  std::vector<std::string> inputs;
  int runs = 50, warmup = 5, threads = 1;
  bool times = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--times") {
      times = true;
    } else if ((a == "--runs" || a == "--warmup" || a == "--threads" || a == "--out-dir") &&
        i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--out-dir") out_dir = v;
      else if (a == "--runs") runs = std::stoi(v);
      else if (a == "--warmup") warmup = std::stoi(v);
      else threads = std::stoi(v);
    } else if (model.empty()) {
      model = a;
    } else {
      inputs.push_back(a);
    }
  }
  if (model.empty() || runs < 1 || threads < 1) {
    std::fprintf(stderr, "usage: libtorch_timer MODEL.pt IN.npy... [--runs N] "
                         "[--warmup W] [--threads T] [--out-dir DIR] [--times]\n");
    return 2;
  }
  try {
    at::set_num_threads(threads);
    torch::NoGradGuard no_grad;
    torch::jit::Module m = torch::jit::load(model);
    m.eval();
    std::vector<torch::jit::IValue> args;
    for (const auto &p : inputs) args.push_back(read_npy(p));
    c10::IValue first = m.forward(args);
    if (!out_dir.empty()) {
      std::vector<torch::Tensor> outs;
      flatten(first, outs);
      for (size_t j = 0; j < outs.size(); j++)
        write_npy(out_dir + "/output_" + std::to_string(j) + ".npy", outs[j]);
    }
    for (int i = 1; i < warmup; i++) m.forward(args);
    std::vector<double> ms;
    for (int i = 0; i < runs; i++) {
      auto t0 = std::chrono::steady_clock::now();
      m.forward(args);
      auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    if (times) {
      std::printf("times_ms");
      for (double t : ms) std::printf(" %.6f", t);
      std::printf("\n");
    }
    std::sort(ms.begin(), ms.end());
    double median = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
    std::printf("latency_ms min=%.4f median=%.4f max=%.4f runs=%d threads=%d\n",
                ms.front(), median, ms.back(), runs, at::get_num_threads());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "libtorch_timer: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
