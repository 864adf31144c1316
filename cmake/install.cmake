# install.cmake — what `cmake --install BUILD [--prefix DIR]` puts where
# (included by the top-level CMakeLists.txt once every target exists):
#
#   bin/nncc                                 the compiler
#   include/nncc.h                           the runtime API
#   lib/libnncc_runtime.a                    the runtime library, static
#   lib/libnncc_runtime.so{,.0,.0.1.0}       and shared
#   lib/pkgconfig/nncc.pc                    pkg-config --cflags --libs nncc
#   lib/cmake/nncc/nncc{Config,ConfigVersion,Targets}.cmake
#                                            find_package(nncc): nncc::runtime
#                                            (shared), nncc::runtime_static,
#                                            nncc::nncc (the compiler)
#   share/nncc/examples/                     run_model.c and a CMakeLists.txt
#                                            that builds it against the above
#
# (lib is CMAKE_INSTALL_LIBDIR.) Every installed file finds the others by
# relative paths, so the tree can be moved, or installed with --prefix at
# install time. tests/install.sh installs into a temporary prefix and
# builds examples/run_model.c against it both ways.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(NNCC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nncc)

set_target_properties(nncc_runtime PROPERTIES EXPORT_NAME runtime_static)
set_target_properties(nncc_runtime_shared PROPERTIES EXPORT_NAME runtime)
set_target_properties(nncc PROPERTIES EXPORT_NAME nncc)
install(TARGETS nncc nncc_runtime nncc_runtime_shared EXPORT nnccTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/runtime/include/nncc.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT nnccTargets NAMESPACE nncc:: DESTINATION ${NNCC_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/nnccConfig.cmake.in
  ${CMAKE_BINARY_DIR}/nnccConfig.cmake INSTALL_DESTINATION ${NNCC_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/nnccConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/nnccConfig.cmake ${CMAKE_BINARY_DIR}/nnccConfigVersion.cmake
  DESTINATION ${NNCC_CMAKE_DIR})

# nncc.pc names the prefix relative to its own folder (${pcfiledir}).
file(RELATIVE_PATH NNCC_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
set(NNCC_PC_PREFIX "\${pcfiledir}/${NNCC_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/nncc.pc.in ${CMAKE_BINARY_DIR}/nncc.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/nncc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES ${CMAKE_SOURCE_DIR}/examples/run_model.c ${CMAKE_SOURCE_DIR}/examples/CMakeLists.txt
  DESTINATION ${CMAKE_INSTALL_DATADIR}/nncc/examples)
