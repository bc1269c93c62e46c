{
  "targets": [
    {
      "target_name": "cmkg_dnnl",
      "sources": ["cmkg_dnnl.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fexceptions", "-fopenmp", "-march=native"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
