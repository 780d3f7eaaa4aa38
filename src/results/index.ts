/** The results contract: types, readers and writers of the files of a results folder. */
export {
  checkSchemaVersion,
  layerDescriptions,
  readActivationsJson,
  readArgsJson,
  readDescriptionsCsv,
  readDissectArgs,
  readImagesTxt,
  readNeuronsJson,
  readResultsMatrix,
  resultsFilePath,
} from './read.js';
export * from './schema.js';
export {
  layerFileNames,
  runHeader,
  writeActivationsJson,
  writeAnalysisJson,
  writeArgsJson,
  writeDescriptionsCsv,
  writeImagesTxt,
  writeNeuronsJson,
  writeResultsMatrix,
} from './write.js';
