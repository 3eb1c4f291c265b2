# In-process engine tools (no server): lorad-generate, lorad-bench and lorad-finetune.
add_executable(lorad-generate ${CMAKE_CURRENT_LIST_DIR}/lorad_generate.cc)
target_link_libraries(lorad-generate PRIVATE lorad_engine absl::flags absl::flags_parse)
add_executable(lorad-bench ${CMAKE_CURRENT_LIST_DIR}/lorad_bench.cc)
target_link_libraries(lorad-bench PRIVATE lorad_engine_model absl::flags absl::flags_parse)
add_executable(lorad-finetune ${CMAKE_CURRENT_LIST_DIR}/lorad_finetune.cc)
target_link_libraries(lorad-finetune PRIVATE lorad_engine lorad_engine_finetune absl::flags
                                             absl::flags_parse)
