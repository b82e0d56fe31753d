# install.cmake — `make install` / `cmake --install`: the libraries (static
# libtpipe.a and shared libtpipe.so), tpipe.h, the CLI, a pkg-config file and a
# CMake package (find_package(tpipe) gives tpipe::tpipe, the shared library, and
# tpipe::tpipe_static). Both are relocatable: the .pc file finds its prefix
# from its own location (${pcfiledir}), the CMake files from theirs.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(tpipe_shared PROPERTIES EXPORT_NAME tpipe)
set_target_properties(tpipe PROPERTIES EXPORT_NAME tpipe_static)
install(TARGETS tpipe tpipe_shared EXPORT tpipeTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/tpipe.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET tpipe_cli)
    install(TARGETS tpipe_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(TPIPE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tpipe)
install(EXPORT tpipeTargets NAMESPACE tpipe:: DESTINATION ${TPIPE_CMAKE_DIR})
# Whether the installed library needs libcurl (the net module was built).
if(TARGET tp_net)
    set(TPIPE_WITH_CURL ON)
    set(TPIPE_PC_CURL " libcurl")
else()
    set(TPIPE_WITH_CURL OFF)
    set(TPIPE_PC_CURL "")
endif()
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/tpipeConfig.cmake.in
    ${CMAKE_BINARY_DIR}/cmake/tpipeConfig.cmake INSTALL_DESTINATION ${TPIPE_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/tpipeConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/tpipeConfig.cmake
              ${CMAKE_BINARY_DIR}/cmake/tpipeConfigVersion.cmake
        DESTINATION ${TPIPE_CMAKE_DIR})

configure_file(${CMAKE_SOURCE_DIR}/cmake/tpipe.pc.in ${CMAKE_BINARY_DIR}/cmake/tpipe.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cmake/tpipe.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
